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
	n := uint64(len(src.clip))

	m, err := playlist.ParseOrigin(src.Playlist())
	require.NoError(t, err)
	assert.Equal(t, 2, m.TargetDuration)
	assert.Equal(t, uint64(0), m.MediaSequence)
	require.Len(t, m.Segments, windowSegments)
	assert.True(t, m.Segments[n].Discontinuity, "loop point starts a discontinuity")

	clk.Add(time.Duration(2*n) * segmentDuration) // two loops later
	m, err = playlist.ParseOrigin(src.Playlist())
	require.NoError(t, err)
	assert.Equal(t, 2*n, m.MediaSequence)
	assert.Equal(t, uint64(1), m.DiscontinuitySequence, "one loop point left the window")
	for _, s := range m.Segments {
		assert.Equal(t, s.Seq%n == 0, s.Discontinuity, "seq %d", s.Seq)
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
