//go:build linux

package tcpinfo

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRead: a loopback connection's bytes are queued while the peer does not read them, and
// acknowledged by then in part; once the peer has read them all, all are acknowledged and
// none are queued.
func TestRead(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, aerr := ln.Accept(); aerr == nil {
			accepted <- c
		}
	}()
	var d net.Dialer
	c, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	peer := <-accepted
	defer peer.Close()

	s, ok := Read(c)
	require.True(t, ok)
	assert.Zero(t, s.Queued)
	const n = 8 << 20 // more than the peer's receive buffer takes: some stays queued
	written := make(chan error, 1)
	go func() { _, werr := c.Write(make([]byte, n)); written <- werr }()
	// The writer blocks once the buffers are full: the peer has not read a byte.
	require.Eventually(t, func() bool { s, _ = Read(c); return s.Queued > 0 }, 5*time.Second, 10*time.Millisecond)
	assert.Less(t, s.Acked, uint64(n))

	_, err = io.CopyN(io.Discard, peer, n)
	require.NoError(t, err)
	require.NoError(t, <-written)
	require.Eventually(t, func() bool { s, _ = Read(c); return s.Queued == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, s.Acked, uint64(n))

	_, ok = Read(nil)
	assert.False(t, ok)
}
