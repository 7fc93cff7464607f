package peerassist

import "time"

// usable reports whether id is not being skipped at now: how tests see that a failing
// neighbour is skipped.
func (n *neighbours) usable(id string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.m[id]
	return s == nil || !now.Before(s.skipUntil)
}
