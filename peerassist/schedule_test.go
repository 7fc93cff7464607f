package peerassist

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlayheadDeadlines(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var ph playhead
	_, ok := ph.deadline(10, t0)
	assert.False(t, ok, "unknown before any segment was served")

	// A start: three 2 s segments delivered at once give a 6 s buffer.
	for seq := uint64(10); seq < 13; seq++ {
		ph.served(seq, 2*time.Second, t0)
	}
	at, ok := ph.deadline(13, t0)
	require.True(t, ok)
	assert.Equal(t, t0.Add(6*time.Second), at, "the next segment is needed when the buffer runs dry")
	at, _ = ph.deadline(15, t0)
	assert.Equal(t, t0.Add(10*time.Second), at, "two segments later: two durations more")
	at, _ = ph.deadline(12, t0.Add(time.Second))
	assert.Equal(t, t0.Add(time.Second), at, "a segment already served is needed now")

	// Delivered late, after the buffer ran dry at t0+6 s: the player stalled, and the buffer
	// counts from the delivery.
	ph.served(13, 2*time.Second, t0.Add(7*time.Second))
	at, _ = ph.deadline(14, t0.Add(7*time.Second))
	assert.Equal(t, t0.Add(9*time.Second), at)

	// The player itself asks for a segment ahead: one after the next is a parallel fetch
	// (needed a duration after the next); further on is a jump (a skip to the live sync
	// point), needed when the buffer runs dry, not after the segments it skipped.
	at, _, _ = ph.need(15, t0.Add(7*time.Second), true)
	assert.Equal(t, t0.Add(11*time.Second), at, "parallel fetch")
	at, _, _ = ph.need(20, t0.Add(7*time.Second), true)
	assert.Equal(t, t0.Add(9*time.Second), at, "a skip ahead is needed when the buffer runs dry")
	at, _ = ph.deadline(20, t0.Add(7*time.Second))
	assert.Equal(t, t0.Add(21*time.Second), at, "a prefetch counts the segments between")

	// A jump (seek, switch) starts over.
	ph.served(40, 2*time.Second, t0.Add(8*time.Second))
	at, _ = ph.deadline(41, t0.Add(8*time.Second))
	assert.Equal(t, t0.Add(10*time.Second), at)

	// CMCD's buffer length is authoritative.
	ph.observeBuffer(t0.Add(9*time.Second), 5*time.Second)
	at, _ = ph.deadline(41, t0.Add(9*time.Second))
	assert.Equal(t, t0.Add(14*time.Second), at)
}

func TestCMCDBuffer(t *testing.T) {
	for _, tc := range []struct {
		query, header string
		want          time.Duration
		ok            bool
	}{
		{query: "CMCD=bl%3D2300%2Cd%3D2000%2Cot%3Dv%2Csid%3D%22abc%22", want: 2300 * time.Millisecond, ok: true},
		{header: `bl=800,mtp=25400`, want: 800 * time.Millisecond, ok: true},
		{query: "CMCD=d%3D2000"},
		{query: "CMCD=bl%3D-5"},
		{query: "CMCD=bl%3Dxyz"},
		{query: "token=abc"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/live/tv/1.ts?"+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("CMCD-Request", tc.header)
		}
		got, ok := cmcdBuffer(r)
		assert.Equal(t, tc.ok, ok, "%q %q", tc.query, tc.header)
		assert.Equal(t, tc.want, got, "%q %q", tc.query, tc.header)
	}
}

// TestDeadlineBroughtForward: the swarm rung ends reserve before the deadline, and earlier
// when a player's request brings the deadline forward.
func TestDeadlineBroughtForward(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		dl := newDeadline(start.Add(10 * time.Second))
		ctx, stop := dl.before(t.Context(), time.Second, time.Now)
		defer stop()
		time.Sleep(2 * time.Second)
		require.NoError(t, ctx.Err())
		dl.tighten(start.Add(20 * time.Second)) // later: ignored
		dl.tighten(start.Add(5 * time.Second))
		<-ctx.Done()
		assert.Equal(t, 4*time.Second, time.Since(start), "5 s deadline less 1 s reserve")
		assert.True(t, errors.Is(context.Cause(ctx), errDeadline))
	})
}

func TestDeadlinesMap(t *testing.T) {
	var ds deadlines
	now := time.Unix(1_700_000_000, 0)
	d := [32]byte{1}
	a := ds.of(d, now.Add(5*time.Second), now)
	b := ds.of(d, now.Add(2*time.Second), now)
	assert.Same(t, a, b, "one deadline per fetch")
	at, _ := a.get()
	assert.Equal(t, now.Add(2*time.Second), at, "brought forward")
	ds.forget(d, a)
	assert.NotSame(t, a, ds.of(d, now, now), "forgotten when the fetch ended")
}

// TestNeighbourHealth: a failing neighbour is skipped for a while and its failures in a row
// counted; a delivery clears them.
func TestNeighbourHealth(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := newNeighbours()
	assert.True(t, n.usable("a", now), "unknown: usable")
	assert.Equal(t, 1, n.done("a", false, 5*time.Second, now))
	assert.False(t, n.usable("a", now.Add(4*time.Second)))
	assert.True(t, n.usable("a", now.Add(5*time.Second)), "usable again after the skip")
	assert.Equal(t, 2, n.done("a", false, 5*time.Second, now))
	assert.Equal(t, 0, n.done("a", true, 0, now), "a delivery clears the failures")
	assert.Equal(t, 1, n.count())
}

func TestUplinkSelfAssessment(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var u uplink
	for range 4 {
		assert.False(t, u.record(true, now), "no verdict on fewer than uplinkMin uploads")
	}
	assert.True(t, u.advertising(now))
	assert.True(t, u.record(true, now), "five misses of five: quiet")
	assert.False(t, u.advertising(now))
	short, long := time.Duration(float64(quietFor)*(1-quietJitter)), time.Duration(float64(quietFor)*(1+quietJitter))
	assert.False(t, u.advertising(now.Add(short-time.Second)))
	assert.True(t, u.advertising(now.Add(long)), "tries again after quietFor, give or take a quarter")
	assert.Equal(t, 1, u.quiets())
	later := now.Add(long)
	for range 5 {
		u.record(true, later)
	}
	assert.False(t, u.advertising(later.Add(2*short-time.Second)), "the second spell lasts twice as long")
	assert.True(t, u.advertising(later.Add(2*long)))

	// Spells of proxies that went quiet at once end at different times.
	ends := map[time.Time]bool{}
	for range 20 {
		var v uplink
		for range uplinkMin {
			v.record(true, now)
		}
		ends[v.quietUntil] = true
	}
	assert.Greater(t, len(ends), 10, "spread")

	var good uplink
	for i := range 50 {
		good.record(i%3 == 0, now) // a third missed: fine
	}
	assert.True(t, good.advertising(now))
}

func TestGatewayReserve(t *testing.T) {
	var g gatewayEstimate
	assert.Equal(t, unknownReserve, g.reserve(1<<20))
	g.observe(1_000_000, 10*time.Millisecond) // 100 MB/s
	assert.Equal(t, minReserve, g.reserve(100_000), "small and fast: the floor")
	assert.Equal(t, 2*time.Second+200*time.Millisecond, g.reserve(100_000_000), "twice the expected time plus a margin")
	assert.Equal(t, maxReserve, g.reserve(1<<30), "bounded")
}

// TestPlayheadGone: a playhead idle for more than two durations (and a second) with its
// buffer dry is gone: the next segment is a start, needed now.
func TestPlayheadGone(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var ph playhead
	ph.served(5, 2*time.Second, t0)
	_, ok := ph.deadline(6, t0.Add(4*time.Second))
	assert.True(t, ok, "a short pause: still playing")
	_, ok = ph.deadline(20, t0.Add(30*time.Second))
	assert.False(t, ok, "back after 30 s: a start")
}
