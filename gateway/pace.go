package gateway

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Pacing segment bytes to a known uplink (EgressLimit). Written as fast as sockets take
// them, the segments of a busy gateway pile up in its link's queue: every packet (a
// playlist, an event, a root's segment) waits behind them, the queue overflows, TCP backs
// off for seconds, transfers stall and are asked again, and bytes the kernel had taken are
// thrown away with their connections. Paced at paceShare of the uplink, the queue stays
// short; and a cell's root (swarm.FetchRoot: one copy for its whole cell) goes first.

// paceShare is the share of EgressLimit that segment bytes are paced to: the rest carries
// headers, playlists, event streams and the tracker.
const paceShare = 0.85

// Pacing grain: bytes are granted paceChunk at a time while the bytes already granted
// leave the link within paceAhead.
const (
	paceChunk = 16 << 10
	paceAhead = 40 * time.Millisecond
	paceRetry = 5 * time.Millisecond // how often a waiter behind a root's bytes looks again
)

// pacer grants segment bytes at rate, a root's first.
type pacer struct {
	now    func() time.Time
	on     atomic.Bool // rate > 0: read without the lock, as every chunk of every transfer asks
	mu     sync.Mutex  // guards the following fields
	rate   float64     // bytes per second; 0: not paced (an estimated uplink not saturated)
	free   time.Time   // when the bytes granted so far will have left at rate
	high   int         // roots waiting
	waited time.Time   // when a grant last had to wait (the rate held a transfer back)
}

func newPacer(limit int64, now func() time.Time) *pacer {
	p := &pacer{now: now}
	if limit > 0 {
		p.rate = paceShare * float64(limit)
		p.on.Store(true)
	}
	return p
}

// setRate paces from now on at rate bytes per second (0: not at all).
func (p *pacer) setRate(rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = rate
	p.on.Store(rate > 0)
}

// state returns the rate, and when a grant last had to wait for it.
func (p *pacer) state() (rate float64, waited time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate, p.waited
}

// wait returns when n more bytes may be written (high: a root's), or ctx's error.
func (p *pacer) wait(ctx context.Context, n int, high bool) error {
	if !p.on.Load() {
		return nil
	}
	if high {
		p.mu.Lock()
		p.high++
		p.mu.Unlock()
		defer func() { p.mu.Lock(); p.high--; p.mu.Unlock() }()
	}
	for {
		p.mu.Lock()
		if p.rate <= 0 {
			p.mu.Unlock()
			return nil
		}
		now := p.now()
		if p.free.Before(now) {
			p.free = now
		}
		backlog := p.free.Sub(now)
		if backlog <= paceAhead && (high || p.high == 0) {
			p.free = p.free.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
			p.mu.Unlock()
			return nil
		}
		p.waited = now
		d := max(paceRetry, backlog-paceAhead)
		p.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pacedWriter writes a response body through a pacer.
type pacedWriter struct {
	http.ResponseWriter
	ctx  context.Context
	p    *pacer
	high bool
}

func (w *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if !w.p.on.Load() { // not paced (now): the rest at once
			m, err := w.ResponseWriter.Write(b)
			return written + m, err
		}
		n := min(len(b), paceChunk)
		if err := w.p.wait(w.ctx, n, w.high); err != nil {
			return written, err
		}
		m, err := w.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach the connection.
func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
