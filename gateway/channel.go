package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/swarm"
)

// channel is one configured channel: its origin sources, its renditions once discovered,
// and its counters.
type channel struct {
	name    string
	sources []*url.URL     // in order of preference
	origin  *ingest.Origin // fetches from sources under the origin address policy
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

// rendition is one media playlist the gateway serves: its window and the ingest that
// fills it.
type rendition struct {
	name   string // "" for a media origin, else r0, r1, … in the origin's order
	win    *window
	ingest ingest.Runner
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

// discover finds out what the channel's origin serves (retrying until ctx ends) and makes
// the channel's renditions, each a window and the ingest that fills it. It does nothing
// once the channel is discovered.
func (s *Server) discover(ctx context.Context, ch *channel) error {
	if len(ch.list()) > 0 {
		return nil
	}
	d, err := ingest.Discover(ctx, ch.origin, ch.sources, s.ingestConfig(ch))
	if err != nil {
		return err
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.multivariant = d.Multivariant
	ch.renditions = map[string]*rendition{}
	// MaxChannelBytes bounds the channel: each rendition holds its share (and always at
	// least its newest segment).
	share := s.cfg.MaxChannelBytes / int64(len(d.Renditions))
	for _, name := range d.Renditions {
		r := &rendition{name: name, win: newWindow(s.windowSize(ch), share, ch.latency)}
		r.win.published = func(seg *ingest.Segment) {
			s.tracker.Published(ch.name, swarm.SegmentEvent{Rendition: name, Seq: seg.Seq, Name: seg.Name,
				Digest: seg.Digest.String(), Size: seg.Size, DurationMS: int64(seg.Duration * 1000)})
		}
		r.ingest = d.Ingest(ingest.Target{Channel: ch.name, Rendition: name, Window: r.win, Fleet: s.reg, Errors: &ch.sourceErrors})
		ch.renditions[name] = r
	}
	s.log.Info("channel discovered", "channel", ch.name, "renditions", len(d.Renditions), "kind", d.Kind)
	return nil
}

// windowSize is how many segments the channel's live playlists list: at least as many as
// its latency mode needs.
func (s *Server) windowSize(ch *channel) int {
	return max(s.cfg.WindowSegments, ch.latency.minWindow())
}

// ingestConfig is what the channel's ingest takes of the gateway's configuration.
func (s *Server) ingestConfig(ch *channel) *ingest.Config {
	return &ingest.Config{Window: s.windowSize(ch), PollInterval: s.cfg.PollInterval, MaxBackoff: s.cfg.MaxBackoff,
		FailoverAfter: s.cfg.FailoverAfter, MaxSegmentBytes: s.cfg.MaxSegmentBytes, SegmentDuration: s.cfg.SegmentDuration,
		OriginTimeout: s.cfg.OriginTimeout, Logger: s.log.With("channel", ch.name), Now: s.cfg.Now}
}

// runChannel discovers the channel and ingests every rendition until ctx ends.
func (s *Server) runChannel(ctx context.Context, ch *channel) {
	if s.discover(ctx, ch) != nil {
		return
	}
	var wg sync.WaitGroup
	for _, r := range ch.list() {
		wg.Go(func() { _ = r.ingest.Run(ctx) })
	}
	wg.Wait()
}
