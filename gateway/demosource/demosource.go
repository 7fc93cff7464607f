package demosource

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

//go:embed clip/*.ts
var clipFS embed.FS

const (
	segmentDuration = 2 * time.Second
	windowSegments  = 6
)

// Source serves the live stream: GET /index.m3u8 and GET /{n}.ts.
type Source struct {
	clip  *loop
	start time.Time
	now   func() time.Time
	run   string // this run's random name, in every segment: a restarted source, like a restarted encoder, makes new bytes
}

// New returns a source whose live edge starts at now() with a full window already listed.
// now nil means time.Now.
func New(now func() time.Time) (*Source, error) {
	if now == nil {
		now = time.Now
	}
	var clip [][]byte
	for i := 0; ; i++ {
		b, err := clipFS.ReadFile(fmt.Sprintf("clip/clip%d.ts", i))
		if err != nil {
			break
		}
		clip = append(clip, b)
	}
	if len(clip) == 0 {
		return nil, fmt.Errorf("demosource: no embedded clip")
	}
	l, err := newLoop(clip, segmentDuration)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	return &Source{clip: l, start: now(), now: now, run: hex.EncodeToString(id[:])}, nil
}

// newest is the sequence number of the newest complete segment.
func (s *Source) newest() uint64 {
	return uint64(s.now().Sub(s.start)/segmentDuration) + windowSegments - 1
}

// Playlist renders the current live playlist.
func (s *Source) Playlist() []byte {
	last := s.newest()
	first := last + 1 - windowSegments
	w := playlist.Window{TargetDuration: int(segmentDuration / time.Second), MediaSequence: first}
	for seq := first; seq <= last; seq++ {
		w.Segments = append(w.Segments, playlist.Segment{
			Seq:      seq,
			Name:     strconv.FormatUint(seq, 10) + ".ts",
			Duration: segmentDuration.Seconds(),
		})
	}
	return playlist.Render(w, playlist.ForPlayers)
}

// ServeHTTP serves the playlist and the segments; anything else is 404.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "index.m3u8" {
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(s.Playlist())
		return
	}
	seq, err := strconv.ParseUint(strings.TrimSuffix(name, ".ts"), 10, 64)
	if err != nil || !strings.HasSuffix(name, ".ts") || seq > s.newest() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "video/mp2t")
	_, _ = w.Write(s.Segment(seq))
}

// Segment returns the bytes of segment seq: its clip segment, continued from the loops
// before it (see loop), and a null packet naming seq.
func (s *Source) Segment(seq uint64) []byte {
	return append(s.clip.segment(seq), nullPacket(s.run, seq)...)
}

const tsPacket = 188

// nullPacket is an MPEG-TS null packet (sync byte, PID 0x1FFF, payload only) whose payload
// names the run and the segment, padded with 0xFF.
func nullPacket(run string, seq uint64) []byte {
	p := make([]byte, tsPacket)
	copy(p, []byte{0x47, 0x1F, 0xFF, 0x10})
	n := copy(p[4:], "RawFlow demo "+run+" segment "+strconv.FormatUint(seq, 10))
	for i := 4 + n; i < tsPacket; i++ {
		p[i] = 0xFF
	}
	return p
}
