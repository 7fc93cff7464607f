package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// TestWindowRefused: a negative window is an error, not the default.
func TestWindowRefused(t *testing.T) {
	for _, n := range []int{-5, 1, 2} {
		_, err := New(Config{WindowSegments: n, Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/x.m3u8"}}}},
			swarm.NewMemory(swarm.Options{}))
		require.ErrorContains(t, err, "want at least 3", n)
	}
}
