//go:build e2e

package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/swarm"
)

// TestGatewayDrains: when the gateway's context ends (SIGTERM), /readyz fails at once
// while playlists are still served; after the drain the listener closes, and a response
// in flight all along still completes in full.
func TestGatewayDrains(t *testing.T) {
	t.Parallel()
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	octx, ocancel := context.WithCancel(t.Context())
	odone := make(chan struct{})
	go func() { _ = origin.run(octx); close(odone) }()
	t.Cleanup(func() { ocancel(); <-odone })

	gw, err := newGatewayNode("127.0.0.1:0", gateway.Config{PeerAddrs: swarm.AddrLoopback, Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.url}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	gw.drain = 2 * time.Second // long enough for the checks below, which take milliseconds
	entered, release := make(chan struct{}), make(chan struct{})
	gw.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Has("hold") { // the in-flight request: held until released
				close(entered)
				<-release
			}
			next.ServeHTTP(w, r)
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- gw.run(ctx) }()
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)

	type result struct {
		code int
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, gerr := http.Get(gw.url + "/live/tv/index.m3u8?hold")
		if gerr != nil {
			inflight <- result{err: gerr}
			return
		}
		defer resp.Body.Close()
		b, gerr := io.ReadAll(resp.Body)
		inflight <- result{resp.StatusCode, string(b), gerr}
	}()
	<-entered
	cancel() // SIGTERM

	// Drain runs on the gateway's goroutine: ask until it has (bounded, well within the drain).
	var code int
	var body []byte
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, gerr := http.Get(gw.url + "/readyz")
		require.NoError(t, gerr)
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if code = resp.StatusCode; code != http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	assert.Equal(t, http.StatusServiceUnavailable, code, "readiness while draining")
	assert.Contains(t, string(body), `"draining":true`)
	resp, err := http.Get(gw.url + "/live/tv/index.m3u8")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "players are served while draining")

	// After the drain the listener closes: new connections are refused.
	addr := strings.TrimPrefix(gw.url, "http://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			require.True(t, errors.Is(err, syscall.ECONNREFUSED), "dial: %v", err)
			break
		}
		c.Close()
		require.True(t, time.Now().Before(deadline), "the listener is still open 15 s after the drain began")
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the gateway stopped (%v) before its in-flight response finished", err)
	default:
	}
	close(release)
	r := <-inflight
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.code)
	assert.Contains(t, r.body, "#EXTM3U", "the in-flight response completed")
	assert.NoError(t, <-done)
}
