package swarm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryConformance(t *testing.T) {
	runConformance(t, func(_ *testing.T, opts Options) Registry { return NewMemory(opts) })
}

// TestMemoryPrunesOnWrite checks that a channel's dead peers, holdings and claims do not
// pile up: writes sweep them once they have expired.
func TestMemoryPrunesOnWrite(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(Options{Now: clock.Now})
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: m, ch: "bounded"}
	for round := range 20 {
		for i := range 50 {
			p := e.joined(round*100 + i)
			e.have(p, digest(round*100+i))
			e.lookup(digest(round*100+i+50), p, 10)
		}
		clock.Advance(DefaultHoldTTL)
	}
	e.joined(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels["bounded"]
	assert.Len(t, ch.peers, 1)
	assert.Empty(t, ch.have)
	assert.Empty(t, ch.fetch)
}

// TestMemoryLookupDoesNotCreateChannels checks that reads leave no state behind.
func TestMemoryLookupDoesNotCreateChannels(t *testing.T) {
	m := NewMemory(Options{})
	leech := Peer{ID: peerID(1), Channel: "nobody", Leech: true}
	_, elected, err := m.Lookup(t.Context(), "nobody", digest(1), leech, LookupQuery{Limit: 5})
	require.NoError(t, err)
	assert.False(t, elected)
	_, err = m.Stats(t.Context(), "nobody")
	require.NoError(t, err)
	assert.Empty(t, m.channels)
}
