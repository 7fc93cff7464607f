package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// Egress: each channel counts the segment bytes it serves (the ground truth of what the
// gateway costs) and adds them to the registry's counters and stats buckets, so that every
// gateway of a fleet shows one picture. With them go the viewer gauges: the proxies the
// registry knows (fleet-wide) and the players this gateway serves itself.

func (s *Server) flushLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.StatsFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flushEgress(ctx)
			s.sampleViewers(ctx)
		}
	}
}

// flushEgress adds each channel's unflushed egress to the registry's counters, and to its
// stats buckets split by rendition.
// One flush at a time (the flush loop and stats requests both flush): two at once would
// both add the same delta.
func (s *Server) flushEgress(ctx context.Context) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	now := s.cfg.Now()
	for _, ch := range s.channelMap() {
		total := ch.egress.Load()
		delta := total - ch.flushed.Load()
		if delta <= 0 {
			continue
		}
		if err := s.reg.AddStats(ctx, ch.name, swarm.Counters{GatewayEgressBytes: delta}); err != nil {
			s.log.Debug("egress flush failed", "channel", ch.name, "err", err)
			continue
		}
		ch.flushed.Add(delta)
		sample := swarm.Sample{Gateway: true, Counters: swarm.Counters{GatewayEgressBytes: delta}, Renditions: map[string]swarm.Counters{}}
		for _, r := range ch.list() {
			if d := r.egress.Load() - r.flushed.Load(); d > 0 && len(sample.Renditions) < swarm.MaxReportRenditions {
				r.flushed.Add(d)
				sample.Renditions[r.name] = swarm.Counters{GatewayEgressBytes: d}
			}
		}
		if err := s.reg.AddSample(ctx, ch.name, now, sample); err != nil {
			s.log.Debug("egress sample not recorded", "channel", ch.name, "err", err)
		}
	}
}

// sampleViewers records each channel's viewer gauges, and keeps the registry's figures
// for /metrics.
func (s *Server) sampleViewers(ctx context.Context) {
	now := s.cfg.Now()
	for _, ch := range s.channelMap() {
		st, err := s.reg.Stats(ctx, ch.name)
		if err != nil {
			continue
		}
		ch.lastStats.Store(&st)
		if offload, err := s.recentOffload(ctx, ch.name, now); err == nil {
			ch.offload.Store(offload)
		}
		v := &swarm.Viewers{GatewayID: s.id, Assisted: int64(st.ActivePeers), Direct: int64(ch.direct.count(now))}
		if err := s.reg.AddSample(ctx, ch.name, now, swarm.Sample{Gateway: true, Viewers: v}); err != nil {
			s.log.Debug("viewer sample not recorded", "channel", ch.name, "err", err)
		}
	}
}

// recentOffload is the share of player bytes peers carried over the last minute of a
// channel's stats buckets (fleet-wide), as the dashboard shows it.
func (s *Server) recentOffload(ctx context.Context, name string, now time.Time) (float64, error) {
	bs, err := s.reg.Buckets(ctx, name, now.Add(-time.Minute+swarm.BucketStep10), now, swarm.BucketStep10)
	if err != nil {
		return 0, err
	}
	var sum swarm.Bucket
	for _, b := range bs {
		sum.Merge(b)
	}
	return sum.ConfirmedOffload(), nil
}

// directWindow is how long a player address counts as a viewer after its last playlist
// request; maxRecentClients bounds the addresses one channel remembers.
const (
	directWindow     = 30 * time.Second
	maxRecentClients = 100_000
)

// recentClients remembers the addresses that fetched a channel's playlist for players.
type recentClients struct {
	mu   sync.Mutex // guards last
	last map[string]time.Time
}

func (r *recentClients) seen(addr string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	if _, ok := r.last[addr]; ok || len(r.last) < maxRecentClients {
		r.last[addr] = now
	}
}

// count forgets the addresses not seen within directWindow and counts the others.
func (r *recentClients) count(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for a, t := range r.last {
		if now.Sub(t) > directWindow {
			delete(r.last, a)
		}
	}
	return len(r.last)
}

func (s *Server) handleStats(c echo.Context) error {
	ctx := c.Request().Context()
	s.flushEgress(ctx)
	resp := swarm.StatsResponse{Channels: map[string]swarm.ChannelReport{}}
	for name := range s.channelMap() {
		st, err := s.reg.Stats(ctx, name)
		if err != nil {
			return err
		}
		resp.Channels[name] = swarm.ChannelReport{ChannelStats: st, Offload: st.ConfirmedOffload(),
			UnconfirmedPeerBytes: st.UnconfirmedPeerBytes()}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, resp)
}
