package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
)

// TestNeighbourPortConnectionLimit: the neighbour port serves at most maxNeighbourConns
// connections; one more waits until one of them closes.
func TestNeighbourPortConnectionLimit(t *testing.T) {
	n, err := newPeerNode("127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { _ = n.run(ctx) })
	addr := n.neighbour.Addr().String()
	url := "http://" + addr + swarm.NeighbourSegmentPath + "00"
	get := func(timeout time.Duration) error {
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	require.NoError(t, get(2*time.Second), "served while under the limit")

	var held []net.Conn
	for range maxNeighbourConns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		held = append(held, c)
		// A byte of a request line: the server has accepted the connection once it reads it.
		_, err = c.Write([]byte("G"))
		require.NoError(t, err)
	}
	assert.Error(t, get(500*time.Millisecond), "one more connection waits")
	for _, c := range held {
		c.Close()
	}
	assert.NoError(t, get(2*time.Second), "served again once they closed")
}
