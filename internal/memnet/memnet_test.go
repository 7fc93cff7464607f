package memnet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An HTTP server on a Listener answers a client that dials it, over connections it keeps,
// and the addresses read as loopback TCP.
func TestHTTPOverListener(t *testing.T) {
	ln := Listen()
	body := strings.Repeat("segment ", 64<<10) // larger than any buffer on the way
	remotes := make(chan string, 8)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remotes <- r.RemoteAddr
		_, _ = io.WriteString(w, body)
	}), ReadHeaderTimeout: time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var dials atomic.Int32
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return ln.Dial(ctx, network, addr)
		}}}
	for range 3 {
		resp, err := client.Get("http://" + ln.Addr().String() + "/x")
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, body, string(got))
		host, _, err := net.SplitHostPort(<-remotes)
		require.NoError(t, err)
		assert.True(t, net.ParseIP(host).IsLoopback(), host)
	}
	assert.EqualValues(t, 1, dials.Load(), "the connection is kept and reused")

	require.NoError(t, srv.Close())
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
	_, err := ln.Dial(context.Background(), "tcp", "")
	assert.ErrorIs(t, err, net.ErrClosed, "a closed listener takes no dial")
}

// A dial that nobody accepts ends with its context.
func TestDialEndsWithContext(t *testing.T) {
	ln := Listen()
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ln.Dial(ctx, "tcp", "")
	assert.True(t, errors.Is(err, context.Canceled), err)
	assert.NotEqual(t, Listen().Addr().String(), ln.Addr().String(), "two listeners, two addresses")
}
