//go:build e2e

package main

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// TestMultivariantOrigin: an ffmpeg ABR ladder (two video variants, a separate audio
// rendition group) is mirrored rendition by rendition; ffmpeg plays it from the gateway and
// through two proxies without errors, every segment byte is the gateway's, and the proxies
// share segments.
func TestMultivariantOrigin(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	origin := hlstest.StartABROrigin(t, 3)
	st := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PollInterval: 500 * time.Millisecond, ReportInterval: time.Second,
		Channels: []gateway.ChannelConfig{{Name: "abr", Sources: []string{origin.URL}}}}, 2)
	gw := st.gw
	code, body := fetch(t, gw.url+"/live/abr/index.m3u8")
	require.Equal(t, 200, code)
	mv, err := playlist.ParseMultivariant(body)
	require.NoError(t, err)
	assert.Equal(t, []string{"r0/index.m3u8", "r1/index.m3u8", "r2/index.m3u8"}, mv.URIs, "audio group, then two variants")
	assert.Contains(t, string(body), `GROUP-ID="group_aud"`, "everything but the URIs is the origin's")

	urls := []string{gw.url + "/live/abr/index.m3u8"}
	for _, p := range st.peers {
		urls = append(urls, p.url+"/live/abr/index.m3u8")
	}
	results := make([]hlstest.PlayResult, len(urls))
	var players sync.WaitGroup
	for i, u := range urls {
		players.Go(func() { results[i] = hlstest.Play(t.Context(), t, u, 12) })
	}
	players.Wait()
	for i, r := range results {
		require.NoError(t, r.Err, "player %d: %s", i, r.Stderr)
		assert.Empty(t, r.Problems, "player %d", i)
		assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 10*time.Second, "player %d", i)
	}
	st.checkRecorders(t)
	renditions := map[string]bool{}
	for i, rec := range st.recs {
		rec.mu.Lock()
		for r := range rec.renditions {
			renditions[r] = true
		}
		rec.mu.Unlock()
		c := st.peers[i].proxy.Status().Channels["abr"]
		t.Logf("proxy %d: %d segments from peers, %d from gateway", i, c.SegmentsFromPeers, c.SegmentsFromGateway)
	}
	assert.True(t, renditions["r0"] && (renditions["r1"] || renditions["r2"]), "players took audio and video renditions: %v", renditions)
	stats := gatewayStats(t, gw.url, "abr")
	deadline := time.Now().Add(5 * time.Second)
	for ; stats.BytesFromPeers == 0 && time.Now().Before(deadline); stats = gatewayStats(t, gw.url, "abr") {
		time.Sleep(200 * time.Millisecond)
	}
	assert.Positive(t, stats.BytesFromPeers, "the proxies shared segments")
	t.Logf("gateway stats: offload %.2f, %+v", stats.Offload, stats.Counters)
}
