package flight

import (
	"context"
	"sync"
	"time"
)

// Call is one call under way, or done; Wait returns its result.
type Call[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// Wait returns the call's result, or ctx's error if ctx ends first.
func (c *Call[V]) Wait(ctx context.Context) (V, error) {
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// Group holds the calls under way, by key. The zero value is ready to use.
type Group[K comparable, V any] struct {
	mu    sync.Mutex // guards calls
	calls map[K]*Call[V]
}

// Do joins the call for key, starting fn if none is under way. fn runs on a context of
// its own, detached from ctx's cancellation (its values are kept) and bounded by timeout.
// The key is forgotten when fn returns: fn must store what later callers should find
// elsewhere before it returns, so that no caller falls between the two.
func (g *Group[K, V]) Do(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) *Call[V] {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.calls[key]; c != nil {
		return c
	}
	if g.calls == nil {
		g.calls = map[K]*Call[V]{}
	}
	c := &Call[V]{done: make(chan struct{})}
	g.calls[key] = c
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		c.val, c.err = fn(fctx)
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	return c
}

// Get returns the call for key under way, or nil: for callers that may wait on a call but
// must never start one.
func (g *Group[K, V]) Get(key K) *Call[V] {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[key]
}
