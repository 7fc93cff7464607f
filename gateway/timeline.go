package gateway

import (
	"context"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// restoreTimeline continues the channel's saved timeline, so that a restarted gateway
// never numbers a segment lower than before. The registry may be briefly away (Redis
// restarting with us): it is asked a few times; after that the channel starts afresh,
// with a log line saying so.
func (s *Server) restoreTimeline(ctx context.Context, channel string, r *rendition) {
	for attempt := range 5 {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		t, ok, err := s.reg.LoadTimeline(lctx, channel, r.name)
		cancel()
		switch {
		case err == nil && ok:
			r.win.restore(t)
			s.log.Info("timeline restored", "channel", channel, "rendition", r.name, "next_seq", t.NextSeq, "disc_seq", t.DiscSeq)
			return
		case err == nil:
			return
		}
		s.log.Warn("cannot load timeline", "channel", channel, "rendition", r.name, "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	s.log.Error("starting without the saved timeline: media sequence numbers may repeat", "channel", channel, "rendition", r.name)
}

// timelineSaver returns the function a rendition's ingest calls after each listed segment.
func (s *Server) timelineSaver(channel, rendition string) func(context.Context, swarm.Timeline) {
	return func(ctx context.Context, t swarm.Timeline) {
		if err := s.reg.SaveTimeline(ctx, channel, rendition, t); err != nil {
			s.log.Debug("timeline save failed", "channel", channel, "rendition", rendition, "err", err)
		}
	}
}
