package peerassist

import (
	"sync"
	"time"
)

// Neighbour health. The plan names the sources of each stripe, in order; the proxy skips
// one that failed lately (passive health: skipAfterFailure, or Config.BanFor for bad
// bytes), counts its failures in a row, and reports one that keeps failing.

// maxNeighbourStates bounds the neighbours the proxy remembers; past it, it forgets them
// all (a swarm that large is churning anyway).
const maxNeighbourStates = 4096

// Time a neighbour is skipped after a failure that is not an integrity failure (those are
// Config.BanFor).
const skipAfterFailure = 5 * time.Second

type neighbourState struct {
	failures  int // failures in a row
	skipUntil time.Time
	// resting: skipUntil was set by rest (its path not known yet), not by a failure; known
	// ends it.
	resting bool
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

// usable reports whether neighbour id is not being skipped at now.
func (n *neighbours) usable(id string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.m[id]
	return s == nil || !now.Before(s.skipUntil)
}

// rest skips neighbour id for d without counting a failure against it: a link to it that
// is not up (not its fault), which its next fetches should not wait for either.
func (n *neighbours) rest(id string, d time.Duration, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.state(id); s.skipUntil.Before(now.Add(d)) {
		s.skipUntil, s.resting = now.Add(d), true
	}
}

// known ends neighbour id's rest: its path is known now (its address took a connection, or
// its link came up), and its next fetches have nothing to wait for. Resting out the
// remaining seconds sent them to the gateway: in a 1,000-viewer join, where connects
// outlast a fetch's stall bound for want of CPU, most of the members' gateway fetches.
func (n *neighbours) known(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.m[id]; s != nil && s.resting {
		s.skipUntil, s.resting = time.Time{}, false
	}
}

// done records a transfer from neighbour id: delivered (a whole verified segment), or a
// failure to skip it for skip. It returns the neighbour's failures in a row.
func (n *neighbours) done(id string, delivered bool, skip time.Duration, now time.Time) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.state(id)
	switch {
	case skip > 0:
		s.skipUntil, s.resting = now.Add(skip), false
		s.failures++
	case delivered:
		s.failures = 0
	}
	return s.failures
}
