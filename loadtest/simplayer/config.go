package simplayer

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"
)

// Config configures one player. The zero value of every field but URL is a usable default.
type Config struct {
	// URL is the playlist URL: a media playlist, or a multivariant playlist (then Variant
	// picks one).
	URL string
	// Variant is the index (in listed order of EXT-X-STREAM-INF) of the variant to play when
	// URL is multivariant; out of range clamps to the last (a negative one to the first).
	Variant int
	// Client does the requests; nil means a client with a 10 s timeout. Each request has its
	// own deadline too: 5 s for a playlist, three target durations for a segment.
	Client *http.Client
	// LiveSyncSegments: start this many segments behind the end of a live playlist (hls.js
	// liveSyncDurationCount). 0 means 3.
	LiveSyncSegments int
	// MaxBuffer: do not fetch ahead when this much media is buffered. 0 means 30 s.
	MaxBuffer time.Duration
	// CMCD adds a CMCD query parameter (CTA-5004, query-string form) to segment requests, as
	// hls.js does with cmcd enabled: "CMCD=" + url-escaped `bl=<ms>,d=<ms>,ot=v,sid="<SessionID>"`,
	// bl the buffer length rounded down to 100 ms, d the segment's duration.
	CMCD bool
	// SessionID is the CMCD sid; "" means a random hex string.
	SessionID string
	// OnSegment, if set, is called with the URI (resolved, absolute, without the CMCD
	// parameter) and bytes of each media segment after a successful download (not init
	// sections). It runs on Run's goroutine: a slow OnSegment delays the player.
	OnSegment func(uri string, data []byte)
	// MaxSegmentBytes bounds one segment or init section body; 0 means 32 MiB.
	MaxSegmentBytes int64
	// MaxPlaylistBytes bounds one playlist body; 0 means 1 MiB.
	MaxPlaylistBytes int64
}

// setDefaults fills in the zero fields.
func (c *Config) setDefaults() {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	c.Variant = max(c.Variant, 0)
	if c.LiveSyncSegments <= 0 {
		c.LiveSyncSegments = 3
	}
	if c.MaxBuffer <= 0 {
		c.MaxBuffer = 30 * time.Second
	}
	if c.SessionID == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
		c.SessionID = hex.EncodeToString(b)
	}
	if c.MaxSegmentBytes <= 0 {
		c.MaxSegmentBytes = 32 << 20
	}
	if c.MaxPlaylistBytes <= 0 {
		c.MaxPlaylistBytes = 1 << 20
	}
}

// Result is what the viewer experienced so far. Durations are wall-clock, except Latency
// and Buffer, which are media time.
type Result struct {
	Started   bool          // playback began
	Startup   time.Duration // from Run's start to playback start (first segment fully downloaded)
	Stalls    int           // rebuffering events after playback began
	StallTime time.Duration // total time spent rebuffering (an ongoing stall counts up to now)
	Segments  int           // segments downloaded
	Bytes     int64         // bytes of segments and init sections downloaded
	// Errors counts failed requests (non-200, transport error, timeout, oversize, a playlist
	// that does not parse), each try on its own. Failures of the first playlist load, which
	// Run retries while the server comes up, are not counted: they show in Startup.
	Errors  int
	Dropped int // segments given up after every try failed (their media is jumped over)
	// Skips counts the times the player fell out of the live window and jumped to the live
	// sync point.
	Skips int
	// Latency is the latest measure of latency behind live: media time from the playhead to
	// the end of the newest listed segment, measured at each playlist load.
	Latency time.Duration
	Buffer  time.Duration // media buffered ahead of the playhead now
	Ended   bool          // the playlist ended (ENDLIST) and everything was played
}
