package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/gateway/tsingest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// channel is one configured channel: its origin sources, its renditions once discovered,
// and its egress counter.
type channel struct {
	name    string
	sources []*url.URL // in order of preference
	latency LatencyMode
	egress  atomic.Int64
	flushed atomic.Int64 // part of egress already added to the registry
	direct  recentClients
	// The registry's figures as last sampled (see sampleViewers), for /metrics.
	lastStats    atomic.Pointer[swarm.ChannelStats]
	offload      atomic.Value // float64: the last minute's
	sourceErrors atomic.Int64 // failed origin polls or source connections

	mu           sync.RWMutex          // guards the following fields
	multivariant []byte                // rewritten multivariant playlist; nil for a media origin
	renditions   map[string]*rendition // nil until discovered; {"": r} for a media origin
}

// rendition is one media playlist the gateway serves: its window and its ingest, which
// mirrors an HLS origin (ingest) or segments an MPEG-TS stream itself (ts).
type rendition struct {
	name   string // "" for a media origin, else r0, r1, … in the origin's order
	win    *window
	ingest *hlsIngest // nil for an MPEG-TS source
	ts     *tsIngest  // nil for an HLS origin
	// egress counts the segment bytes served for this rendition; flushed is the part
	// already in the stats buckets.
	egress, flushed atomic.Int64
}

// errStarting: the channel's origin has not been reached yet.
var errStarting = errors.New("channel starting: origin not reached yet")

// stats returns the registry's figures as last sampled.
func (ch *channel) stats() swarm.ChannelStats {
	if st := ch.lastStats.Load(); st != nil {
		return *st
	}
	return swarm.ChannelStats{}
}

// rendition returns the named rendition, or an error for the handlers.
func (ch *channel) rendition(name string) (*rendition, error) {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	if ch.renditions == nil {
		return nil, errStarting
	}
	if r := ch.renditions[name]; r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("%w %q/%q", ErrUnknownChannel, ch.name, name)
}

// multivariantPlaylist returns the rewritten multivariant playlist, or nil.
func (ch *channel) multivariantPlaylist() []byte {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	return ch.multivariant
}

// list returns the renditions, sorted by name (nil before discovery).
func (ch *channel) list() []*rendition {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	rs := make([]*rendition, 0, len(ch.renditions))
	for _, r := range ch.renditions {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	return rs
}

// discover finds out, from the first source that answers, whether the origin serves a
// continuous MPEG-TS stream (udp and srt URLs, and http ones whose first bytes say so; one
// rendition the gateway segments itself, every source a failover for it), a media playlist
// (one rendition, every source a failover for it) or a multivariant one (one rendition per
// media playlist it names; each backup source that names as many renditions gives each one
// a failover). It retries with back-off until ctx ends, and does
// nothing once the channel is discovered.
func (s *Server) discover(ctx context.Context, ch *channel) error {
	backoff := s.cfg.PollInterval
	for {
		if len(ch.list()) > 0 {
			return nil
		}
		err := s.tryDiscover(ctx, ch)
		if err == nil {
			return nil
		}
		s.log.Warn("origin not reached", "channel", ch.name, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

func (s *Server) tryDiscover(ctx context.Context, ch *channel) error {
	var errs []error
	for i, src := range ch.sources {
		if tsingest.IsSourceURL(src) {
			s.setStream(ch, i, nil)
			return nil
		}
		body, stream, err := s.probe(ctx, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if stream != nil {
			s.setStream(ch, i, stream)
			return nil
		}
		m, err := playlist.ParseMultivariant(body)
		if err != nil { // a media playlist (or garbage, which its ingest will report)
			s.setRenditions(ch, nil, map[string][]*url.URL{"": ch.sources})
			return nil
		}
		s.setRenditions(ch, m, s.renditionSources(ctx, ch, i, m))
		return nil
	}
	return errors.Join(errs...)
}

// renditionSources resolves rendition i of the primary source's multivariant playlist m,
// followed by the same rendition of every other source whose playlist matches in shape.
func (s *Server) renditionSources(ctx context.Context, ch *channel, primary int, m *playlist.Multivariant) map[string][]*url.URL {
	out := map[string][]*url.URL{}
	add := func(src *url.URL, uris []string) {
		for i, uri := range uris {
			if ref, err := url.Parse(uri); err == nil {
				out[renditionName(i)] = append(out[renditionName(i)], src.ResolveReference(ref))
			}
		}
	}
	add(ch.sources[primary], m.URIs)
	for i, src := range ch.sources {
		if i == primary {
			continue
		}
		body, err := s.fetch(ctx, src, playlist.MaxPlaylistBytes)
		if err != nil {
			s.log.Warn("backup origin not reached; no failover for its renditions", "channel", ch.name, "err", err)
			continue
		}
		if b, err := playlist.ParseMultivariant(body); err == nil && len(b.URIs) == len(m.URIs) {
			add(src, b.URIs)
		}
	}
	return out
}

func renditionName(i int) string { return "r" + strconv.Itoa(i) }

// setRenditions makes the channel's renditions and, for a multivariant origin, its
// rewritten multivariant playlist.
func (s *Server) setRenditions(ch *channel, m *playlist.Multivariant, sources map[string][]*url.URL) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if m != nil {
		names := make([]string, len(m.URIs))
		for i := range names {
			names[i] = renditionName(i) + "/index.m3u8"
		}
		ch.multivariant = m.Rewrite(names)
	}
	ch.renditions = map[string]*rendition{}
	for name, srcs := range sources {
		win := s.newWindow(ch)
		r := &rendition{name: name, win: win}
		r.ingest = &hlsIngest{sources: srcs, win: r.win, client: s.origin, cfg: &s.cfg, errs: &ch.sourceErrors,
			log: s.log.With("channel", ch.name, "rendition", name), fleet: s.fleetTimeline(ch.name, name)}
		ch.renditions[name] = r
	}
	s.log.Info("channel discovered", "channel", ch.name, "renditions", len(sources), "multivariant", m != nil)
}

// newWindow makes a window for one of the channel's media playlists: at least as long as
// its latency mode needs.
func (s *Server) newWindow(ch *channel) *window {
	return newWindow(max(s.cfg.WindowSegments, ch.latency.minWindow()), s.cfg.MaxChannelBytes, 0, ch.latency)
}

// setStream makes the channel one rendition segmented from its MPEG-TS sources; first, if
// not nil, is the stream discovery opened.
func (s *Server) setStream(ch *channel, current int, first io.ReadCloser) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	win := s.newWindow(ch)
	log := s.log.With("channel", ch.name)
	r := &rendition{win: win, ts: newTSIngest(ch.sources, current, win, &s.cfg, log, first)}
	r.ts.errs = &ch.sourceErrors
	r.ts.fleet = s.fleetTimeline(ch.name, "")
	ch.renditions = map[string]*rendition{"": r}
	s.log.Info("channel discovered", "channel", ch.name, "source", "MPEG-TS", "segment_duration", s.cfg.SegmentDuration)
}

// runChannel discovers the channel, continues each rendition's saved timeline and ingests
// every rendition until ctx ends.
func (s *Server) runChannel(ctx context.Context, ch *channel) {
	if s.discover(ctx, ch) != nil {
		return
	}
	var wg sync.WaitGroup
	for _, r := range ch.list() {
		wg.Go(func() {
			s.restoreTimeline(ctx, ch.name, r)
			if r.ts != nil {
				_ = r.ts.Run(ctx)
				return
			}
			_ = r.ingest.Run(ctx)
		})
	}
	wg.Wait()
}
