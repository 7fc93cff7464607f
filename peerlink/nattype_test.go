package peerlink

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/stuntest"
)

// stunOn serves STUN on loopback with peerlink's own server (shift 0) or, shifted, as
// a symmetric NAT would make it look (stuntest).
func stunOn(t *testing.T, shift int) int {
	t.Helper()
	if shift != 0 {
		return stuntest.Serve(t, shift)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); _ = ServeSTUN(ctx, pc) }()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// One public port for both destinations: not symmetric. A port per destination: symmetric.
func TestSymmetricNAT(t *testing.T) {
	symmetric, err := SymmetricNAT(t.Context(), "127.0.0.1", stunOn(t, 0), stunOn(t, 0))
	require.NoError(t, err)
	assert.False(t, symmetric, "loopback maps like a cone")

	symmetric, err = SymmetricNAT(t.Context(), "127.0.0.1", stunOn(t, 0), stunOn(t, 7))
	require.NoError(t, err)
	assert.True(t, symmetric, "a different public port for the second destination")
}

// A server that does not answer ends the test with ErrNoMapping, at the caller's deadline.
func TestSymmetricNATNoAnswer(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { silent.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = SymmetricNAT(ctx, "127.0.0.1", stunOn(t, 0), silent.LocalAddr().(*net.UDPAddr).Port)
	require.ErrorIs(t, err, ErrNoMapping)
}
