package web

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// countingStats has one channel and counts the reads of its totals.
type countingStats struct{ totals atomic.Int64 }

func (*countingStats) Channels() []string { return []string{"tv"} }
func (c *countingStats) Totals(context.Context, string) (swarm.ChannelStats, error) {
	c.totals.Add(1)
	return swarm.ChannelStats{}, nil
}
func (*countingStats) Buckets(context.Context, string, time.Time, time.Time, time.Duration) ([]swarm.Bucket, error) {
	return nil, nil
}

// TestEventStreamsShareOverview: however many streams are open, the stats are read once
// per half EventsInterval (here the clock stands still: once).
func TestEventStreamsShareOverview(t *testing.T) {
	stats := &countingStats{}
	at := time.Unix(1_800_000_000, 0)
	d, err := New(stats, Config{EventsInterval: 20 * time.Millisecond, Now: func() time.Time { return at }})
	require.NoError(t, err)
	front := httptest.NewServer(d.Handler())
	t.Cleanup(front.Close)
	for range 5 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, front.URL+"/api/v1/events", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for events := 0; events < 3 && sc.Scan(); {
			if strings.HasPrefix(sc.Text(), "data: ") {
				events++
			}
		}
	}
	assert.Equal(t, int64(1), stats.totals.Load())
}

func TestEventStreamsCapped(t *testing.T) {
	d, err := New(&countingStats{}, Config{})
	require.NoError(t, err)
	d.streams.Store(maxEventStreams)
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/events", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, int64(maxEventStreams), d.streams.Load(), "a refused stream is not counted")
}
