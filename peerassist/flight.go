package peerassist

import (
	"context"
	"sync"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

// flight is one shared fetch of a segment; done is closed when seg or err is set.
type flight struct {
	done chan struct{}
	seg  *segment
	err  error
}

// flights runs at most one fetch per digest at a time and lets the neighbour port wait on
// a fetch already under way (without ever starting one).
type flights struct {
	mu sync.Mutex // guards m
	m  map[playlist.Digest]*flight
}

func newFlights() *flights { return &flights{m: map[playlist.Digest]*flight{}} }

// do joins the fetch of d, starting it with fn if none is under way. The fetch runs on its
// own context, detached from the caller's (one player disconnecting must never cancel a
// fetch others wait on) and bounded by timeout.
func (fs *flights) do(ctx context.Context, d playlist.Digest, timeout time.Duration, fn func(context.Context) (*segment, error)) *flight {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[d]; f != nil {
		return f
	}
	f := &flight{done: make(chan struct{})}
	fs.m[d] = f
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		f.seg, f.err = fn(fctx)
		fs.mu.Lock()
		delete(fs.m, d)
		fs.mu.Unlock()
		close(f.done)
	}()
	return f
}

// get returns the fetch of d under way, or nil.
func (fs *flights) get(d playlist.Digest) *flight {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.m[d]
}

// wait returns the flight's result, or ctx's error if ctx ends first.
func (f *flight) wait(ctx context.Context) (*segment, error) {
	select {
	case <-f.done:
		return f.seg, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
