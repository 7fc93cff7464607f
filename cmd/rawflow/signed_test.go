//go:build e2e

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

func fetch(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestSignedURLsThroughProxy: a player with a valid token plays through a proxy (which
// passes the token on); without one it is refused, by the proxy as by the gateway.
func TestSignedURLsThroughProxy(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	wg.Go(func() { _ = origin.run(ctx) })
	key := []byte("s3cret")
	reg := swarm.NewMemory(swarm.Options{})
	gw, err := newGatewayNode("127.0.0.1:0", gateway.Config{PeerAddrs: swarm.AddrLoopback, SignKey: key,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.url}}}}, reg)
	require.NoError(t, err)
	wg.Go(func() { _ = gw.run(ctx) })
	waitHTTP(t, gw.url+"/readyz", 10*time.Second)
	p, err := newPeerNode(t.Context(), "127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: gw.url})
	require.NoError(t, err)
	wg.Go(func() { _ = p.run(ctx) })

	var token bytes.Buffer
	require.NoError(t, run(ctx, []string{"token", "--sign-key", "s3cret", "--channel", "tv", "--ttl", "1m"}, &token, io.Discard))
	tok := strings.TrimSpace(token.String())

	code, _ := fetch(t, p.url+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusForbidden, code, "no token")
	code, body := fetch(t, p.url+"/live/tv/index.m3u8?token="+tok)
	require.Equal(t, http.StatusOK, code, string(body))
	w, err := playlist.ParseOrigin(body)
	require.NoError(t, err)
	require.NotEmpty(t, w.Segments)
	for _, s := range w.Segments {
		require.True(t, strings.HasSuffix(s.URI, "?token="+tok), s.URI)
		status, data := fetch(t, p.url+"/live/tv/"+s.URI)
		require.Equal(t, http.StatusOK, status)
		etag, size, known := gatewayObject(gw.url, "/live/tv/"+s.URI)
		require.True(t, known, s.URI)
		assert.Equal(t, size, int64(len(data)), s.URI)
		assert.Equal(t, etag, ingest.ETag(playlist.Sum(data)), s.URI)
	}
	code, _ = fetch(t, gw.url+"/live/tv/"+strings.Split(w.Segments[0].URI, "?")[0])
	assert.Equal(t, http.StatusForbidden, code, "the gateway refuses a segment without a token")
}
