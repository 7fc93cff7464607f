package swarm

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
)

// TestFleetPeerKey: gateways on one Redis asking for the fleet's peer key at once all get
// the same one, and keep getting it; another Redis has its own.
func TestFleetPeerKey(t *testing.T) {
	url := redistest.Start(t)
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			r, err := OpenRedis(url, Options{})
			require.NoError(t, err)
			defer r.Close()
			keys[i], err = r.FleetPeerKey(t.Context())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.Len(t, keys[0], 32)
	for _, k := range keys[1:] {
		assert.Equal(t, keys[0], k, "one key for the fleet")
	}
	other, err := OpenRedis(redistest.Start(t), Options{})
	require.NoError(t, err)
	defer other.Close()
	k, err := other.FleetPeerKey(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, keys[0], k, "another Redis, another fleet")
}
