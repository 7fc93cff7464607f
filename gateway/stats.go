package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// Egress: each channel counts the segment bytes it serves (the ground truth of what the
// gateway costs) and adds them to the registry's counters, so that every gateway of a
// fleet shows one picture.

func (s *Server) flushLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.StatsFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flushEgress(ctx)
		}
	}
}

// flushEgress adds each channel's unflushed egress to the registry's counters.
func (s *Server) flushEgress(ctx context.Context) {
	for _, ch := range s.channels {
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
	}
}

func (s *Server) handleStats(c echo.Context) error {
	ctx := c.Request().Context()
	s.flushEgress(ctx)
	resp := swarm.StatsResponse{Channels: map[string]swarm.ChannelReport{}}
	for name := range s.channels {
		st, err := s.reg.Stats(ctx, name)
		if err != nil {
			return err
		}
		resp.Channels[name] = swarm.ChannelReport{ChannelStats: st, Offload: st.Offload()}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, resp)
}
