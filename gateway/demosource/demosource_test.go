package demosource

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestSourceSlidesAndLoops(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src, err := New(clk.Now)
	require.NoError(t, err)
	n := uint64(len(src.clip.segs))

	m, err := playlist.ParseOrigin(src.Playlist())
	require.NoError(t, err)
	assert.Equal(t, 2, m.TargetDuration)
	assert.Equal(t, uint64(0), m.MediaSequence)
	require.Len(t, m.Segments, windowSegments)
	require.Greater(t, uint64(windowSegments), n, "the first window crosses a loop point")

	clk.Add(time.Duration(2*n) * segmentDuration) // two loops later
	m, err = playlist.ParseOrigin(src.Playlist())
	require.NoError(t, err)
	assert.Equal(t, 2*n, m.MediaSequence)
	assert.Zero(t, m.DiscontinuitySequence)
	for _, s := range m.Segments {
		assert.False(t, s.Discontinuity, "seq %d: the loop is seamless", s.Seq)
	}
}

func TestSourceServesSegments(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src, err := New(clk.Now)
	require.NoError(t, err)
	srv := httptest.NewServer(src)
	defer srv.Close()

	for path, want := range map[string]int{"/index.m3u8": 200, "/0.ts": 200, "/5.ts": 200, "/6.ts": 404, "/x.ts": 404, "/../etc": 404} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, path)
	}
}

// TestSegmentsAreUnique: a loop does not repeat the bytes of the last one; the appended
// null packet is a whole TS packet, so the segment is still packet-aligned.
func TestSegmentsAreUnique(t *testing.T) {
	src, err := New(nil)
	require.NoError(t, err)
	n := uint64(len(src.clip.segs))
	a, b := src.Segment(1), src.Segment(1+n)
	assert.NotEqual(t, playlist.Sum(a), playlist.Sum(b), "same clip segment, different loop")
	again, err := New(nil)
	require.NoError(t, err)
	assert.NotEqual(t, playlist.Sum(a), playlist.Sum(again.Segment(1)), "another run, other bytes")
	assert.Len(t, b, len(a), "same media, later timestamps")
	for _, seg := range [][]byte{a, b} {
		require.Zero(t, len(seg)%tsPacket)
		tail := seg[len(seg)-tsPacket:]
		assert.Equal(t, []byte{0x47, 0x1F, 0xFF}, tail[:3], "sync byte and the null PID")
	}
}
