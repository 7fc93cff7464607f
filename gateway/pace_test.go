package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPacerRootsFirstAtRate: bytes are granted at paceShare of the uplink, never faster,
// and a root's transfer, started after a shorter one, gets the link first and ends first
// (synctest's clock: no wall-clock timing).
func TestPacerRootsFirstAtRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 100 << 10 // bytes per second
		p := newPacer(limit, time.Now)
		start := time.Now()
		var mu sync.Mutex
		var order []string
		transfer := func(name string, chunks int, high bool) {
			for range chunks {
				require.NoError(t, p.wait(t.Context(), paceChunk, high))
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}
		var wg sync.WaitGroup
		wg.Go(func() { transfer("member", 4, false) })
		synctest.Wait() // the member's transfer has the link and waits for more
		wg.Go(func() { transfer("root", 8, true) })
		wg.Wait()
		assert.Equal(t, []string{"root", "member"}, order, "the root's bytes first")
		rate := paceShare * limit
		least := time.Duration(float64(11*paceChunk) / rate * float64(time.Second)) // the first chunk goes at once
		assert.GreaterOrEqual(t, time.Since(start), least-paceAhead-time.Millisecond, "never faster than the paced rate")
	})
}

// TestPacedWriterStopsWithTheClient: a paced transfer whose client has gone stops waiting.
func TestPacedWriterStopsWithTheClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1<<10, time.Now) // 1 KB/s: a 64 KB body takes a minute
		ctx, cancel := context.WithCancel(t.Context())
		w := &pacedWriter{ResponseWriter: httptest.NewRecorder(), ctx: ctx, p: p}
		done := make(chan error)
		go func() { _, err := w.Write(make([]byte, 64<<10)); done <- err }()
		synctest.Wait()
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		assert.Less(t, w.ResponseWriter.(*httptest.ResponseRecorder).Body.Len(), 64<<10)
		var _ http.ResponseWriter = w
	})
}

// TestNoPacerWithoutLimit: no EgressLimit, no pacing.
func TestNoPacerWithoutLimit(t *testing.T) {
	assert.False(t, newPacer(0, time.Now).on.Load(), "no limit: not paced")
}
