package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/gateway/tsingest"
	"github.com/rawflow/rawflow/playlist"
)

// Window is where the ingest of one rendition publishes; the edge's segment window
// implements it. Calls come from one goroutine.
type Window interface {
	// SetPlaylist sets the playlist-level facts: the origin's tags passed through, the
	// target duration, the playlist type and whether it ended.
	SetPlaylist(info PlaylistInfo)
	// Publish lists a complete segment at the live edge. Its Seq and DiscSeq come from the
	// timeline: never lower than the previous segment's; a number further on than the next
	// one means segments were listed elsewhere in the fleet (the window starts again there).
	Publish(now time.Time, seg *Segment) error
	// ListVOD lists a whole VOD playlist at once; its segments' bytes are fetched on demand.
	ListVOD(segs []*Segment, info PlaylistInfo)
}

// PlaylistInfo is what a media playlist says besides its segments.
type PlaylistInfo struct {
	Version        int      // the origin's EXT-X-VERSION
	Header         []string // the origin's header tags the gateway passes through
	Trailer        []string // and its trailing tags
	TargetDuration int      // seconds; fixed once for the stream
	Type           string   // "EVENT", "VOD" or ""
	Ended          bool     // EXT-X-ENDLIST
}

func (p PlaylistInfo) equal(o PlaylistInfo) bool {
	return p.Version == o.Version && p.TargetDuration == o.TargetDuration && p.Type == o.Type && p.Ended == o.Ended &&
		slices.Equal(p.Header, o.Header) && slices.Equal(p.Trailer, o.Trailer)
}

// Config is what every ingest of a gateway shares. The gateway fills it from its own
// configuration; every field must be set.
type Config struct {
	// Window is how many of the newest segments the first poll of a live playlist takes.
	Window int
	// PollInterval is how often a playlist is polled (and the first retry pause);
	// MaxBackoff bounds the pause after failures.
	PollInterval, MaxBackoff time.Duration
	// FailoverAfter is how many consecutive failures make the next source take over.
	FailoverAfter int
	// MaxSegmentBytes bounds one segment.
	MaxSegmentBytes int64
	// SegmentDuration is the target duration of the segments cut from an MPEG-TS stream.
	SegmentDuration time.Duration
	// OriginTimeout bounds each origin request and each connection attempt.
	OriginTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// OriginKind is what a channel's origin serves.
type OriginKind int

// The kinds of origin.
const (
	OriginMedia        OriginKind = iota // one media playlist
	OriginMultivariant                   // a multivariant playlist: one rendition per media playlist it names
	OriginStream                         // a continuous MPEG-TS stream, segmented by the gateway
)

// String names the kind of origin, as logs say it.
func (k OriginKind) String() string {
	return [...]string{"media playlist", "multivariant playlist", "MPEG-TS stream"}[k]
}

// Discovery is what Discover found out of a channel's origin.
type Discovery struct {
	Kind OriginKind
	// Multivariant is the origin's multivariant playlist rewritten to name the gateway's
	// renditions (r0/index.m3u8, …); nil unless Kind is OriginMultivariant.
	Multivariant []byte
	// Renditions are the names of the media playlists the gateway serves: "" for a media
	// or stream origin, r0, r1, … in the origin's order for a multivariant one.
	Renditions []string

	origin  *Origin
	cfg     *Config
	sources map[string][]*url.URL // per rendition, in order of preference
	current int                   // OriginStream: the source that answered
	stream  io.ReadCloser         // OriginStream: the stream discovery opened, or nil
}

// Discover finds out, from the first source that answers, whether the origin serves a
// continuous MPEG-TS stream (udp and srt URLs, and http ones whose first bytes say so; one
// rendition the gateway segments itself, every source a failover for it), a media playlist
// (one rendition, every source a failover for it) or a multivariant one (one rendition per
// media playlist it names; each backup source that names as many renditions gives each
// one a failover). It retries with back-off until ctx ends.
func Discover(ctx context.Context, origin *Origin, sources []*url.URL, cfg *Config) (*Discovery, error) {
	backoff := cfg.PollInterval
	for {
		d, err := discover(ctx, origin, sources, cfg)
		if err == nil {
			return d, nil
		}
		cfg.Logger.Warn("origin not reached", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, cfg.MaxBackoff)
	}
}

func discover(ctx context.Context, origin *Origin, sources []*url.URL, cfg *Config) (*Discovery, error) {
	var errs []error
	d := &Discovery{origin: origin, cfg: cfg, Renditions: []string{""}, sources: map[string][]*url.URL{"": sources}}
	for i, src := range sources {
		if tsingest.IsSourceURL(src) {
			d.Kind, d.current = OriginStream, i
			return d, nil
		}
		body, stream, err := origin.probe(ctx, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if stream != nil {
			d.Kind, d.current, d.stream = OriginStream, i, stream
			return d, nil
		}
		if m, err := playlist.ParseMultivariant(body); err == nil {
			d.Kind, d.sources = OriginMultivariant, renditionSources(ctx, origin, sources, i, m, cfg.Logger)
			d.Renditions = make([]string, len(m.URIs))
			names := make([]string, len(m.URIs))
			for i := range m.URIs {
				d.Renditions[i] = renditionName(i)
				names[i] = d.Renditions[i] + "/index.m3u8"
			}
			d.Multivariant = m.Rewrite(names)
		}
		return d, nil // not multivariant: a media playlist (or garbage, which its ingest will report)
	}
	return nil, errors.Join(errs...)
}

// renditionSources resolves the renditions of the primary source's multivariant playlist
// m, each followed by the same rendition of every other source whose playlist matches in
// shape.
func renditionSources(ctx context.Context, origin *Origin, sources []*url.URL, primary int, m *playlist.Multivariant, log *slog.Logger) map[string][]*url.URL {
	out := map[string][]*url.URL{}
	add := func(src *url.URL, uris []string) {
		for i, uri := range uris {
			if ref, err := url.Parse(uri); err == nil {
				out[renditionName(i)] = append(out[renditionName(i)], src.ResolveReference(ref))
			}
		}
	}
	add(sources[primary], m.URIs)
	for i, src := range sources {
		if i == primary {
			continue
		}
		body, err := origin.Get(ctx, src, playlist.MaxPlaylistBytes)
		if err != nil {
			log.Warn("backup origin not reached; no failover for its renditions", "err", err)
			continue
		}
		if b, err := playlist.ParseMultivariant(body); err == nil && len(b.URIs) == len(m.URIs) {
			add(src, b.URIs)
		}
	}
	return out
}

func renditionName(i int) string { return "r" + strconv.Itoa(i) }

// Target is where one rendition's ingest publishes, and what it reports to.
type Target struct {
	Channel, Rendition string
	Window             Window
	// Fleet numbers the segments with the other gateways of a fleet; nil numbers alone.
	Fleet Fleet
	// Errors counts failed polls or dropped connections; nil means not counted.
	Errors *atomic.Int64
}

// Runner is one rendition's ingest: HLS or TS.
type Runner interface {
	// Run ingests until ctx ends.
	Run(ctx context.Context) error
}

// Ingest returns the ingest of one of the discovered renditions (an *HLS or a *TS),
// publishing into t.Window. The stream discovery opened, if any, goes to the first TS
// ingest made.
func (d *Discovery) Ingest(t Target) Runner {
	log := d.cfg.Logger // says which channel
	if t.Rendition != "" {
		log = log.With("rendition", t.Rendition)
	}
	tl := &timeline{fleet: t.Fleet, channel: t.Channel, rendition: t.Rendition, log: log}
	if d.Kind == OriginStream {
		ts := newTS(d.sources[""], d.current, t.Window, d.origin, d.cfg, log, d.stream)
		d.stream = nil
		ts.tl, ts.errs = tl, t.Errors
		return ts
	}
	return &HLS{sources: d.sources[t.Rendition], win: t.Window, origin: d.origin, cfg: d.cfg, log: log, errs: t.Errors, tl: tl}
}

// Close releases the stream discovery opened, if no ingest took it.
func (d *Discovery) Close() error {
	if d.stream != nil {
		return d.stream.Close()
	}
	return nil
}
