package ingest

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/swarm"
)

// newHLS returns the ingest of a media playlist at the origins' /live.m3u8, in order,
// publishing into win, numbered with fleet (nil: alone).
func newHLS(t *testing.T, win Window, fleet Fleet, cfg *Config, origins ...*hlstest.FakeLive) *HLS {
	t.Helper()
	var srcs []*url.URL
	for _, o := range origins {
		srv := httptest.NewServer(o)
		t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL + "/live.m3u8")
		require.NoError(t, err)
		srcs = append(srcs, u)
	}
	d, err := Discover(t.Context(), NewOrigin(OriginConfig{Timeout: cfg.OriginTimeout, Sources: srcs}), srcs, cfg)
	require.NoError(t, err)
	require.Equal(t, OriginMedia, d.Kind)
	return d.Ingest(Target{Channel: "tv", Window: win, Fleet: fleet}).(*HLS)
}

// TestFailover: when the first origin keeps failing, the second takes over after a
// discontinuity, and the media sequence keeps rising.
func TestFailover(t *testing.T) {
	a, b := &hlstest.FakeLive{}, &hlstest.FakeLive{}
	a.Set(50, 3, 0)
	b.Set(7, 5, 1)
	cfg := testConfig()
	cfg.Window, cfg.FailoverAfter = 5, 2
	win := &recordingWindow{}
	in := newHLS(t, win, nil, cfg, a, b)
	ctx := context.Background()
	require.False(t, in.result(in.Poll(ctx)))
	require.Len(t, win.segments(), 3)

	a.Update(func(o *hlstest.FakeLive) { o.Playlist = http.NotFoundHandler() }) // the first origin fails
	assert.True(t, in.result(in.Poll(ctx)))
	assert.Equal(t, 0, in.current, "one failure is not enough")
	assert.True(t, in.result(in.Poll(ctx)))
	assert.Equal(t, 1, in.current, "second failure: failover")
	require.False(t, in.result(in.Poll(ctx)))

	segs := win.segments()
	require.Len(t, segs, 8)
	first := segs[3]
	assert.Equal(t, uint64(3), first.Seq, "the media sequence keeps rising")
	assert.True(t, first.Discontinuity, "the new origin starts a discontinuity")
	assert.Equal(t, uint64(1), first.DiscSeq)
	assert.Equal(t, b.Body(7), first.Data)
}

// TestRestartContinuesTimeline: an ingest restarted on the same registry numbers on from
// where the last one stopped, with a discontinuity and the same target duration.
func TestRestartContinuesTimeline(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 5, 0)
	reg := swarm.NewMemory(swarm.Options{})
	cfg := testConfig()
	cfg.Window = 5
	before := &recordingWindow{}
	first := newHLS(t, before, reg, cfg, o)
	require.NoError(t, first.Poll(t.Context()))
	require.Len(t, before.segments(), 5)

	o.Set(0, 2, 1) // the origin restarted too, with shorter numbering
	after := &recordingWindow{}
	second := newHLS(t, after, reg, cfg, o)
	second.tl.restore(t.Context(), cfg.Now())
	require.NoError(t, second.Poll(t.Context()))
	segs := after.segments()
	require.Len(t, segs, 2)
	assert.Equal(t, uint64(5), segs[0].Seq, "numbering continues")
	assert.True(t, segs[0].Discontinuity)
	assert.Equal(t, uint64(1), segs[0].DiscSeq)
	assert.Equal(t, 2, after.info.TargetDuration)
}

// TestRestartWithoutRegistryNeverGoesBack: a gateway restarted with nothing recorded (the
// registry in memory) numbers from the wall clock: its media and discontinuity sequences
// are above the previous run's, which listed fewer segments than seconds passed.
func TestRestartWithoutRegistryNeverGoesBack(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 5, 0)
	cfg := testConfig()
	cfg.Window = 5
	t0 := time.Unix(1_800_000_000, 0)
	before := &recordingWindow{}
	first := newHLS(t, before, swarm.NewMemory(swarm.Options{}), cfg, o)
	first.tl.restore(t.Context(), t0)
	require.NoError(t, first.Poll(t.Context()))
	last := before.segments()[4]

	o.Set(1, 5, 0) // 2 s later: one more segment
	after := &recordingWindow{}
	second := newHLS(t, after, swarm.NewMemory(swarm.Options{}), cfg, o)
	second.tl.restore(t.Context(), t0.Add(2*time.Second))
	require.NoError(t, second.Poll(t.Context()))
	next := after.segments()[0]
	assert.Greater(t, next.Seq, last.Seq, "the media sequence never goes back")
	assert.GreaterOrEqual(t, next.DiscSeq, last.DiscSeq, "nor the discontinuity sequence")
	// hls.js walks an array up to the discontinuity sequence on every playlist reload (2.7 s
	// per reload at the media sequence's numbers): it stays small.
	assert.Less(t, last.DiscSeq, uint64(1e6), "the discontinuity sequence counts in ten minutes, not quarter seconds")
	assert.Positive(t, last.DiscSeq, "a clock base")
	assert.Less(t, last.Seq, uint64(math.MaxInt32), "32-bit players read the numbers")
}

// TestClockNumbersFit32Bits: the wall-clock numbers stay below 2^31 (GStreamer reads
// EXT-X-MEDIA-SEQUENCE as a 32-bit signed integer) until 2043, and rise four per second.
func TestClockNumbersFit32Bits(t *testing.T) {
	at := func(y int) uint64 { return clockNumber(time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC)) }
	assert.Less(t, at(2043), uint64(math.MaxInt32))
	now := time.Now()
	assert.Equal(t, clockNumber(now)+4, clockNumber(now.Add(time.Second)))
	assert.Zero(t, clockNumber(time.Time{}), "no clock: no base")
	assert.Less(t, discClockNumber(at(2043)), uint64(1e6), "hls.js reloads cost it O(discontinuity sequence)")
	assert.Equal(t, discClockNumber(clockNumber(now))+1, discClockNumber(clockNumber(now.Add(discClockUnit))))
}
