package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/rawflow/rawflow/playlist"
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

// listTimeout bounds one Registry.List; after a failure the rendition numbers its segments
// alone for listRetry, so that a registry that is away does not hold ingest up.
const (
	listTimeout = 500 * time.Millisecond
	listRetry   = 5 * time.Second
)

// fleetTimeline lists a rendition's segments in the fleet's timeline and saves the
// timeline after each, so that every gateway of a fleet lists the same bytes under the
// same number, and a restarted gateway never numbers lower than before. A nil
// *fleetTimeline numbers alone and saves nothing (unit tests).
type fleetTimeline struct {
	reg                swarm.Registry
	channel, rendition string
	log                *slog.Logger
	retryAt            time.Time // no List before this (the last one failed)
}

func (s *Server) fleetTimeline(channel, rendition string) *fleetTimeline {
	return &fleetTimeline{reg: s.reg, channel: channel, rendition: rendition,
		log: s.log.With("channel", channel, "rendition", rendition)}
}

// append lists a segment in w: under the number the fleet gave its bytes when the
// registry answers (see window.append), else under the window's own next number. span and
// segments are how far back the source's segments reach (the origin playlist's duration
// and length): the fleet's listing of these bytes counts if it is no older and no further
// behind (see swarm.ListClaim).
func (f *fleetTimeline) append(ctx context.Context, w *window, now time.Time, span time.Duration, segments int, meta playlist.Segment, data []byte, ext string, aux []*Segment) *Segment {
	if f == nil {
		return w.append(now, meta, data, ext, aux, nil)
	}
	meta.Digest = playlist.Sum(data)
	var at *swarm.Listing
	if !now.Before(f.retryAt) {
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		l, err := f.reg.List(lctx, f.channel, f.rendition, w.claim(meta, span, segments))
		cancel()
		if err == nil {
			at = &l
		} else {
			f.retryAt = now.Add(listRetry)
			f.log.Warn("fleet timeline unavailable: numbering segments alone", "retry_in", listRetry, "err", err)
		}
	}
	seg := w.append(now, meta, data, ext, aux, at)
	f.save(ctx, w)
	return seg
}

// save records w's timeline (what a restarted gateway continues from).
func (f *fleetTimeline) save(ctx context.Context, w *window) {
	if f == nil {
		return
	}
	if err := f.reg.SaveTimeline(ctx, f.channel, f.rendition, w.timeline()); err != nil {
		f.log.Debug("timeline save failed", "err", err)
	}
}
