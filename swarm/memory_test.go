package swarm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryConformance(t *testing.T) {
	runConformance(t, func(_ *testing.T, opts Options) Registry { return NewMemory(opts) })
}

// TestMemoryPrunesOnWrite checks that a channel's dead peers and their slots do not pile
// up: writes sweep them once they have expired.
func TestMemoryPrunesOnWrite(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(Options{Now: clock.Now})
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: m, ch: "bounded"}
	for round := range 20 {
		for i := range 50 {
			e.joined(round*100 + i)
		}
		clock.Advance(DefaultPeerTTL)
	}
	e.joined(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels["bounded"]
	assert.Len(t, ch.peers, 1)
	require.Len(t, ch.cells, 1)
	for _, c := range ch.cells {
		assert.Len(t, c.slots, 1)
	}
}

// TestMemoryReadsDoNotCreateChannels checks that reads leave no state behind.
func TestMemoryReadsDoNotCreateChannels(t *testing.T) {
	m := NewMemory(Options{})
	_, ok, err := m.Peer(t.Context(), "nobody", peerID(1))
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = m.Stats(t.Context(), "nobody")
	require.NoError(t, err)
	assert.Empty(t, m.channels)
}
