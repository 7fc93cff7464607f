package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// Fleet is what numbering asks of the registry that the gateways of a fleet share
// (swarm.Memory and swarm.Redis implement it).
type Fleet interface {
	// List returns the place of a segment in the rendition's fleet-wide timeline, and
	// records the timeline (see swarm.Memory.List).
	List(ctx context.Context, channel, rendition string, c swarm.ListClaim) (swarm.Listing, error)
	// LoadTimeline returns where the rendition's timeline stood when last recorded.
	LoadTimeline(ctx context.Context, channel, rendition string) (t swarm.Timeline, ok bool, err error)
	// SaveTimeline records t, each field only ever growing.
	SaveTimeline(ctx context.Context, channel, rendition string, t swarm.Timeline) error
}

// listTimeout bounds one Fleet.List; after a failure the rendition numbers its segments
// alone for listRetry, so that a registry that is away does not hold ingest up.
const (
	listTimeout = 500 * time.Millisecond
	listRetry   = 5 * time.Second
)

// place is where a segment stands in the rendition's timeline.
type place struct {
	seq     uint64 // media sequence number
	disc    bool   // preceded by EXT-X-DISCONTINUITY
	discSeq uint64 // its discontinuity sequence number, its own tag counted
}

// timeline numbers one rendition's segments, so that the media sequence and the
// discontinuity sequence never go back — across origin restarts and failovers (a gap or a
// step back at the origin becomes a discontinuity) and across gateway restarts (the timeline
// continues from the registry) — and so that every gateway of a fleet lists the same bytes
// under the same number (Fleet.List). The target duration is fixed once. A timeline with a
// nil fleet numbers alone (unit tests). It is used by one ingest goroutine.
type timeline struct {
	fleet              Fleet
	channel, rendition string
	log                *slog.Logger

	next     uint64 // the next segment's number
	discSeq  uint64 // the newest numbered segment's discontinuity sequence
	td       int    // target duration, seconds; 0 until fixed
	numbered bool   // a segment was numbered since start
	restored bool   // the timeline was restored: the next segment starts a discontinuity
	// base is the least number of the first segment of a timeline that was not restored:
	// clockNumber at start, less the segments listed at once (see
	// restore, first).
	base uint64
	// hint is the origin's own number of the next segment (HLS), or 0.
	hint    uint64
	retryAt time.Time
}

// restore continues the rendition's recorded timeline, so that a restarted gateway never
// numbers a segment lower than before. The registry may be briefly away (Redis restarting
// with us): it is asked a few times; after that the rendition starts afresh, with a log
// line saying so.
//
// A rendition without a recorded timeline (a new stream, or a registry in memory: a
// restarted gateway without --redis remembers nothing) numbers from the wall clock, in
// quarter seconds since 2026-01-01 UTC (clockNumber): its newest segment at start takes
// that number. Segments come at most one a second (the gateway cuts at least 1 s; HLS
// origins' segments are longer), four times slower than the clock's numbers, so a gateway
// restarted later never lists a media sequence below the one it listed before — provided
// the clock does not go back; a restart more than ~2 s later (with 2 s segments and a
// window of 6) numbers every segment above all it listed before, so players skip ahead
// rather than see a number again. The numbers stay below 2^31 until 2043: some players
// (GStreamer's HLS parser) read EXT-X-MEDIA-SEQUENCE as a 32-bit signed integer. The
// discontinuity sequence starts from the clock too, in coarser units (discClockNumber). A
// zero now means no such base (an MPEG-TS stream numbers from its own clock).
func (t *timeline) restore(ctx context.Context, now time.Time) {
	if t.fleet == nil {
		return
	}
	t.base = clockNumber(now)
	for attempt := range 5 {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		saved, ok, err := t.fleet.LoadTimeline(lctx, t.channel, t.rendition)
		cancel()
		switch {
		case err == nil && ok:
			t.next, t.discSeq, t.td, t.restored, t.base = saved.NextSeq, saved.DiscSeq, saved.TargetDuration, true, 0
			t.log.Info("timeline restored", "next_seq", saved.NextSeq, "disc_seq", saved.DiscSeq)
			return
		case err == nil:
			return
		}
		t.log.Warn("cannot load timeline", "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	t.log.Error("starting without the saved timeline: media sequence numbers may repeat")
}

// clockEpoch and clockUnit define the numbers a timeline without a record starts from.
var clockEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

const clockUnit = 250 * time.Millisecond

// clockNumber is now in clockUnits since clockEpoch, at least 1; 0 for a zero now.
func clockNumber(now time.Time) uint64 {
	if now.IsZero() {
		return 0
	}
	return uint64(max(now.Sub(clockEpoch)/clockUnit, 1))
}

// discClockUnit is the unit of the discontinuity sequence a timeline without a record starts
// from. hls.js walks an array indexed by discontinuity sequence, from 0 to the playlist's, on
// every playlist reload: with the media sequence's quarter seconds (1.2e8 in 2026-12) that
// took 2.7 s of a browser's main thread per reload, and players fell behind the live edge
// for good on a loaded machine. Ten-minute units (53,000 a year; under 10^6 until 2043) cost
// it under a millisecond (0.98 ms at 53,000, 9.7 ms at 530,000). The price: a gateway
// restarted without a record lists a discontinuity sequence no lower than before provided
// its previous run had at most one discontinuity per ten minutes on average (origin
// restarts; a stream normally has none); a registry's record (Redis) keeps it exact.
const discClockUnit = 10 * time.Minute

// discClockNumber is the discontinuity sequence's base for the media sequence's clock base.
func discClockNumber(base uint64) uint64 { return base / uint64(discClockUnit/clockUnit) }

// clockSlack is how far below the wall-clock base an origin's own numbering may be and
// still be kept: an upstream gateway numbers from its clock too.
const clockSlack = uint64(24 * time.Hour / clockUnit)

// first says that the n segments to come are listed at once, at start: a timeline that
// numbers from the clock numbers the newest of them with its base.
func (t *timeline) first(n int) {
	if !t.numbered && n > 1 {
		t.base -= min(t.base, uint64(n-1))
	}
}

// targetDuration fixes the target duration once, before the first segment (unless a
// restored timeline fixed it already), and returns the one in force.
func (t *timeline) targetDuration(td int) int {
	if t.td == 0 && td > 0 {
		t.td = td
	}
	return t.td
}

// alone is where the timeline puts a segment on its own: a discontinuity when the source
// says so (never on the first segment, unless after a restored timeline); the next number,
// or, for the first segment, the source's own number when it is further on (a source that
// numbers its segments itself, see TS).
func (t *timeline) alone(meta playlist.Segment) place {
	p := place{seq: t.next, disc: (meta.Discontinuity && t.numbered) || t.restored}
	p.discSeq = t.discSeq
	if !t.numbered {
		base := t.base
		if t.hint+clockSlack >= base && base > 0 {
			base = t.hint // the origin numbers like a clock (a gateway tier): its numbers are kept
		}
		p.seq = max(p.seq, meta.Seq, base)
		p.discSeq = max(p.discSeq, discClockNumber(t.base))
	}
	if p.disc {
		p.discSeq++
	}
	return p
}

// number places a segment with meta (its Digest set) in the timeline: where the fleet
// listed the same bytes when the registry answers (one List call, which also records the
// timeline), else where the timeline puts it alone. After the first segment since start
// (which takes the fleet's place whatever it is: the same bytes keep their number), a fleet
// listing that would take either sequence back (bytes seen again, or segments numbered
// alone while the registry was away) is not taken. span and segments are how far back the source's segments reach (the origin
// playlist's duration and length): the fleet's listing of these bytes counts if it is no
// older and no further behind (swarm.ListClaim).
func (t *timeline) number(ctx context.Context, now time.Time, meta playlist.Segment, span time.Duration, segments int) place {
	p := t.alone(meta)
	if t.fleet != nil && !now.Before(t.retryAt) {
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		l, err := t.fleet.List(lctx, t.channel, t.rendition, swarm.ListClaim{
			Digest: meta.Digest.String(), Disc: p.disc, MinSeq: p.seq, MinDiscSeq: p.discSeq,
			MaxAge: span + 2*time.Duration(max(t.td, 1))*time.Second, MaxBehind: uint64(segments) + 2,
			TargetDuration: t.td})
		cancel()
		switch {
		case err != nil:
			t.retryAt = now.Add(listRetry)
			t.log.Warn("fleet timeline unavailable: numbering segments alone", "retry_in", listRetry, "err", err)
		case !t.numbered || (l.Seq >= p.seq && l.DiscSeq >= t.discSeq):
			p = place{seq: l.Seq, disc: l.Disc, discSeq: l.DiscSeq}
		}
	}
	t.next, t.discSeq, t.numbered, t.restored = p.seq+1, p.discSeq, true, false
	return p
}

// numberAll places segments at once (a VOD listing: the first one never starts a
// discontinuity) from the next number on, and records the timeline.
func (t *timeline) numberAll(ctx context.Context, segs []*Segment) {
	for i, seg := range segs {
		seg.Discontinuity = seg.Discontinuity && i > 0
		if seg.Discontinuity {
			t.discSeq++
		}
		seg.Seq, seg.DiscSeq = t.next, t.discSeq
		t.next++
	}
	t.numbered, t.restored = true, false
	if t.fleet != nil {
		if err := t.fleet.SaveTimeline(ctx, t.channel, t.rendition,
			swarm.Timeline{NextSeq: t.next, DiscSeq: t.discSeq, TargetDuration: t.td}); err != nil {
			t.log.Debug("timeline save failed", "err", err)
		}
	}
}
