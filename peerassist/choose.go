package peerassist

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Neighbour choice. Among the holders the tracker returned (nearest locality first), the
// proxy keeps to its own group when any of them is there, prefers those that have the
// segment to those still fetching it, skips neighbours it is already fetching from (one
// request in flight per neighbour) and those that failed lately, and picks at random
// weighted by measured throughput, with a floor of a tenth of the best so that unproven
// neighbours are explored.

// maxNeighbourStates bounds the neighbours the proxy remembers; past it, it forgets them
// all (a swarm that large is churning anyway).
const maxNeighbourStates = 4096

// Time a neighbour is skipped after a failure that is not an integrity failure (those are
// Config.BanFor).
const skipAfterFailure = 5 * time.Second

// rateHalfLife is how fast a neighbour's measured throughput forgets old transfers: the
// weight of a transfer halves every rateHalfLife.
const rateHalfLife = 15 * time.Second

type neighbourState struct {
	rate      float64 // bytes per second, decayed average; 0 = unknown
	failures  int     // failures in a row
	measured  time.Time
	busy      bool // a request of this proxy to it is under way
	skipUntil time.Time
}

// neighbours is the proxy's view of the neighbours it fetched from.
type neighbours struct {
	mu sync.Mutex // guards m
	m  map[string]*neighbourState
}

func newNeighbours() *neighbours { return &neighbours{m: map[string]*neighbourState{}} }

// count returns how many neighbours the proxy keeps state for.
func (n *neighbours) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}

func (n *neighbours) state(id string) *neighbourState {
	s := n.m[id]
	if s == nil {
		if len(n.m) >= maxNeighbourStates {
			clear(n.m)
		}
		s = &neighbourState{}
		n.m[id] = s
	}
	return s
}

// pick chooses a holder to fetch from and marks it busy (release with done); ok is false
// when no holder is usable now. group is the proxy's own group; rnd draws in [0, 1).
func (n *neighbours) pick(holders []swarm.Holder, group string, now time.Time, rnd func() float64) (swarm.Holder, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var cands []swarm.Holder
	rank := func(h swarm.Holder) int { // lower is better
		r := 0
		if group == "" || h.Group != group {
			r += 2
		}
		if h.State != swarm.StateHave {
			r++
		}
		return r
	}
	best := 4
	for _, h := range holders {
		s := n.m[h.ID]
		if s != nil && (s.busy || now.Before(s.skipUntil)) {
			continue
		}
		switch r := rank(h); {
		case r < best:
			best, cands = r, append(cands[:0], h)
		case r == best:
			cands = append(cands, h)
		}
	}
	if len(cands) == 0 {
		return swarm.Holder{}, false
	}
	h := cands[weightedIndex(n.weights(cands), rnd())]
	n.state(h.ID).busy = true
	return h, true
}

// weights returns each candidate's weight: its measured rate, at least a tenth of the best
// measured; all equal when nothing is measured.
func (n *neighbours) weights(cands []swarm.Holder) []float64 {
	w := make([]float64, len(cands))
	top := 0.0
	for i, h := range cands {
		if s := n.m[h.ID]; s != nil {
			w[i] = s.rate
		}
		top = max(top, w[i])
	}
	for i := range w {
		w[i] = max(w[i], top/10, 1)
	}
	return w
}

// weightedIndex returns the index that x in [0, 1) falls on when w's weights are laid end
// to end.
func weightedIndex(w []float64, x float64) int {
	total := 0.0
	for _, v := range w {
		total += v
	}
	x *= total
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

// done releases a neighbour picked by pick and records the transfer: n bytes in elapsed,
// and, on failure, how long to skip it. It returns the neighbour's failures in a row.
func (n *neighbours) done(id string, bytes int64, elapsed time.Duration, skip time.Duration, now time.Time) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.state(id)
	s.busy = false
	if skip > 0 {
		s.skipUntil = now.Add(skip)
		s.failures++
	} else if bytes > 0 {
		s.failures = 0
	}

	if bytes > 0 && elapsed > 0 {
		r := float64(bytes) / elapsed.Seconds()
		if s.rate == 0 {
			s.rate = r
		} else {
			// The old rate keeps half its weight per rateHalfLife, between 0.2 and 0.8.
			keep := math.Exp2(-max(now.Sub(s.measured), 0).Seconds() / rateHalfLife.Seconds())
			keep = min(0.8, max(0.2, keep))
			s.rate = keep*s.rate + (1-keep)*r
		}
		s.measured = now
	}
	return s.failures
}

// randFloat is the default draw for pick.
func randFloat() float64 { return rand.Float64() }
