package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestOneCallForConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		var runs atomic.Int32
		release := make(chan struct{})
		fn := func(context.Context) (int, error) { runs.Add(1); <-release; return 42, nil }
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				v, err := g.Do(t.Context(), "k", time.Minute, fn).Wait(t.Context())
				assert.NoError(t, err)
				assert.Equal(t, 42, v)
			})
		}
		synctest.Wait()
		assert.NotNil(t, g.Get("k"), "under way")
		close(release)
		wg.Wait()
		assert.Equal(t, int32(1), runs.Load())
		assert.Nil(t, g.Get("k"), "forgotten once done")
	})
}

func TestCallerLeavingDoesNotCancelTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		release := make(chan struct{})
		var sawCancel atomic.Bool
		fn := func(ctx context.Context) (int, error) {
			select {
			case <-release:
				return 1, nil
			case <-ctx.Done():
				sawCancel.Store(true)
				return 0, ctx.Err()
			}
		}
		leaving, leave := context.WithCancel(t.Context())
		c := g.Do(leaving, "k", time.Minute, fn)
		leave()
		_, err := c.Wait(leaving)
		assert.ErrorIs(t, err, context.Canceled, "the caller that left gets its own error")
		close(release)
		v, err := g.Do(t.Context(), "k", time.Minute, fn).Wait(t.Context())
		assert.NoError(t, err)
		assert.Equal(t, 1, v, "the call went on for the others")
		assert.False(t, sawCancel.Load())
	})
}

func TestTimeoutBoundsTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		fn := func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
		_, err := g.Do(t.Context(), "k", time.Second, fn).Wait(t.Context())
		assert.True(t, errors.Is(err, context.DeadlineExceeded))
	})
}
