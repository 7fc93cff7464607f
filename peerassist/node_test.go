package peerassist

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// TestNodeNeighbourConnectionLimit: the neighbour port serves at most maxNeighbourConns
// connections; one more waits until one of them closes.
func TestNodeNeighbourConnectionLimit(t *testing.T) {
	n, err := Listen(t.Context(), "127.0.0.1:0", "127.0.0.1:0", Config{GatewayURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { _ = n.Run(ctx) })
	addr := n.Neighbour.Addr().String()
	url := "https://" + addr + swarm.NeighbourSegmentPath + "00"
	pin := pinnedTLS(n.Proxy.CertFingerprint(), nil)
	get := func(timeout time.Duration) error {
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: pin}}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	require.NoError(t, get(2*time.Second), "served while under the limit")

	var held []net.Conn
	for range maxNeighbourConns {
		c, err := tls.Dial("tcp", addr, pin) // the server has accepted the connection once the handshake is done
		require.NoError(t, err)
		held = append(held, c)
	}
	assert.Error(t, get(500*time.Millisecond), "one more connection waits")
	for _, c := range held {
		c.Close()
	}
	assert.NoError(t, get(2*time.Second), "served again once they closed")
}

// TestNodeKill: Kill cuts the connections of both ports at once and Run returns.
func TestNodeKill(t *testing.T) {
	n, err := Listen(t.Context(), "127.0.0.1:0", "127.0.0.1:0", Config{GatewayURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	var conns []net.Conn
	for _, ln := range []net.Listener{n.Player, n.Neighbour} {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	n.Kill()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running after Kill")
	}
	for _, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, err := c.Read(make([]byte, 1))
		assert.NotErrorIs(t, err, os.ErrDeadlineExceeded, "connection cut, not left open")
		assert.Error(t, err)
	}
}

func TestNodeAdvertised(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.2:8082": "127.0.0.2:8082",
		"0.0.0.0:8082":   ":8082",
		"[::]:8082":      ":8082",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err)
		assert.Equal(t, want, advertised(a), addr)
	}
}
