//go:build e2e

package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/swarm"
)

var mediaSeqRe = regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)

// listedSeqs returns the first and last media sequence numbers of the gateway's playlist.
func listedSeqs(t *testing.T, base string) (first, last uint64) {
	t.Helper()
	resp, err := http.Get(base + "/live/tv/index.m3u8")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := mediaSeqRe.FindSubmatch(body)
	require.NotNil(t, m, string(body))
	first, err = strconv.ParseUint(string(m[1]), 10, 64)
	require.NoError(t, err)
	n := strings.Count(string(body), "#EXTINF:")
	require.Positive(t, n)
	return first, first + uint64(n) - 1
}

// TestRestartInMemoryNeverGoesBack: a gateway without Redis stopped and started again on
// the same source serves a media sequence not below the one it served before (numbers from
// the wall clock, gateway/ingest/timeline.go), and numbers that fit 32 bits.
func TestRestartInMemoryNeverGoesBack(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	origin := r.demoOrigin(t)
	cfg := gateway.Config{PeerAddrs: swarm.AddrLoopback, Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.url}}}}

	gw, err := newGatewayNode("127.0.0.1:0", cfg, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gw.run(ctx) }()
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)
	before, _ := listedSeqs(t, gw.url)
	stop()
	require.NoError(t, <-done)

	again := r.gateway(t, gateway.Config{PeerAddrs: swarm.AddrLoopback}, origin.url, swarm.NewMemory(swarm.Options{}))
	after, last := listedSeqs(t, again.url)
	assert.GreaterOrEqual(t, after, before, "the restarted gateway's media sequence is not below the one it served before")
	assert.Less(t, last, uint64(math.MaxInt32), "32-bit players read the numbers")
}
