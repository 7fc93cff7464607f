package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// fakeFleet answers List with what next returns, and records the claims.
type fakeFleet struct {
	next   func(c swarm.ListClaim) (swarm.Listing, error)
	claims []swarm.ListClaim
}

func (f *fakeFleet) List(_ context.Context, _, _ string, c swarm.ListClaim) (swarm.Listing, error) {
	f.claims = append(f.claims, c)
	return f.next(c)
}

func (f *fakeFleet) LoadTimeline(context.Context, string, string) (swarm.Timeline, bool, error) {
	return swarm.Timeline{}, false, nil
}

func (f *fakeFleet) SaveTimeline(context.Context, string, string, swarm.Timeline) error { return nil }

// TestTimelineTakesFleetListings: a segment takes the fleet's place when it is the first
// since start (whatever it is), the next number, or further on; its own when the fleet's
// would take a sequence back, or when the registry is away (and then for listRetry).
func TestTimelineTakesFleetListings(t *testing.T) {
	answer := swarm.Listing{}
	var fail error
	f := &fakeFleet{next: func(swarm.ListClaim) (swarm.Listing, error) { return answer, fail }}
	tl := &timeline{fleet: f, channel: "tv", log: slog.New(slog.NewTextHandler(io.Discard, nil)), td: 2}
	t0 := time.Unix(1000, 0)
	meta := func(disc bool) playlist.Segment {
		return playlist.Segment{Digest: playlist.Sum([]byte(time.Now().String())), Discontinuity: disc}
	}
	num := func(at time.Time, l swarm.Listing, disc bool) place {
		answer = l
		return tl.number(t.Context(), at, meta(disc), 12*time.Second, 6)
	}

	assert.Equal(t, place{seq: 40, disc: true, discSeq: 3}, num(t0, swarm.Listing{Seq: 40, Disc: true, DiscSeq: 3}, false),
		"the first segment starts where the fleet is")
	assert.Equal(t, place{seq: 41, discSeq: 3}, num(t0, swarm.Listing{Seq: 41, DiscSeq: 3}, false), "the next number")
	assert.Equal(t, place{seq: 42, discSeq: 3}, num(t0, swarm.Listing{Seq: 30, DiscSeq: 1}, false), "a number passed: its own")
	assert.Equal(t, place{seq: 43, discSeq: 3}, num(t0, swarm.Listing{Seq: 43, DiscSeq: 2}, false), "a discontinuity sequence passed: its own")
	assert.Equal(t, place{seq: 50, disc: true, discSeq: 4}, num(t0, swarm.Listing{Seq: 50, Disc: true, DiscSeq: 4}, false), "further on")

	last := f.claims[len(f.claims)-1]
	assert.Equal(t, swarm.ListClaim{Digest: last.Digest, Disc: false, MinSeq: 44, MinDiscSeq: 3, MaxAge: 16 * time.Second,
		MaxBehind: 8, TargetDuration: 2}, last, "the claim says where the segment would go alone")

	fail = errors.New("redis down")
	assert.Equal(t, place{seq: 51, disc: true, discSeq: 5}, num(t0, swarm.Listing{}, true), "registry away: its own")
	calls := len(f.claims)
	assert.Equal(t, place{seq: 52, discSeq: 5}, num(t0.Add(listRetry/2), swarm.Listing{}, false))
	assert.Len(t, f.claims, calls, "no List until listRetry has passed")
	fail = nil
	assert.Equal(t, place{seq: 60, discSeq: 5}, num(t0.Add(listRetry), swarm.Listing{Seq: 60, DiscSeq: 5}, false))
}

// TestTimelineAlone: without a fleet, the first segment takes a source's own number when
// it is further on, never a discontinuity; then the timeline numbers on.
func TestTimelineAlone(t *testing.T) {
	tl := &timeline{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p := tl.number(t.Context(), time.Now(), playlist.Segment{Seq: 700, Discontinuity: true}, 0, 0)
	assert.Equal(t, place{seq: 700}, p, "a source's own first number; the first segment never starts a discontinuity")
	p = tl.number(t.Context(), time.Now(), playlist.Segment{Seq: 3, Discontinuity: true}, 0, 0)
	assert.Equal(t, place{seq: 701, disc: true, discSeq: 1}, p, "then the timeline's numbers")
	require.Equal(t, 2, tl.targetDuration(2))
	assert.Equal(t, 2, tl.targetDuration(6), "fixed once")
}
