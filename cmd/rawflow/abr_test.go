package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// TestMultivariantOrigin: an ffmpeg ABR ladder (two video variants, a separate audio
// rendition group) is mirrored rendition by rendition; ffmpeg plays it from the gateway and
// through two proxies without errors, every segment byte is the gateway's, and the proxies
// share segments.
func TestMultivariantOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	origin := hlstest.StartABROrigin(t, 3)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	gw, err := newGatewayNode("127.0.0.1:0", gateway.Config{PollInterval: 500 * time.Millisecond, AnnounceInterval: time.Second,
		Channels: []gateway.ChannelConfig{{Name: "abr", Sources: []string{origin.URL}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	wg.Go(func() { assert.NoError(t, gw.run(ctx)) })
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)

	code, body := fetch(t, gw.url+"/live/abr/index.m3u8")
	require.Equal(t, 200, code)
	mv, err := playlist.ParseMultivariant(body)
	require.NoError(t, err)
	assert.Equal(t, []string{"r0/index.m3u8", "r1/index.m3u8", "r2/index.m3u8"}, mv.URIs, "audio group, then two variants")
	assert.Contains(t, string(body), `GROUP-ID="group_aud"`, "everything but the URIs is the origin's")

	var recs []*recorder
	var players sync.WaitGroup
	results := make([]hlstest.PlayResult, 3)
	urls := []string{gw.url + "/live/abr/index.m3u8"}
	for range 2 {
		p, err := newPeerNode("127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: gw.url})
		require.NoError(t, err)
		rec := &recorder{next: p.handler, gw: gw.srv, channel: "abr", seen: make(chan struct{}, 1000)}
		p.handler = rec
		recs = append(recs, rec)
		wg.Go(func() { assert.NoError(t, p.run(ctx)) })
		urls = append(urls, p.url+"/live/abr/index.m3u8")
		defer func() {
			st := p.proxy.Status().Channels["abr"]
			t.Logf("proxy: %d segments from peers, %d from gateway", st.SegmentsFromPeers, st.SegmentsFromGateway)
		}()
	}
	for i, u := range urls {
		players.Go(func() { results[i] = hlstest.Play(ctx, t, u, 12) })
	}
	players.Wait()
	for i, r := range results {
		require.NoError(t, r.Err, "player %d: %s", i, r.Stderr)
		assert.Empty(t, r.Problems, "player %d", i)
		assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 10*time.Second, "player %d", i)
	}
	renditions := map[string]bool{}
	for i, rec := range recs {
		rec.mu.Lock()
		assert.Empty(t, rec.bad, "proxy %d served bytes that are not the gateway's", i)
		assert.Positive(t, rec.segments, "proxy %d", i)
		for r := range rec.renditions {
			renditions[r] = true
		}
		rec.mu.Unlock()
	}
	assert.True(t, renditions["r0"] && (renditions["r1"] || renditions["r2"]), "players took audio and video renditions: %v", renditions)
	st := gatewayStats(t, gw.url, "abr")
	deadline := time.Now().Add(5 * time.Second)
	for ; st.BytesFromPeers == 0 && time.Now().Before(deadline); st = gatewayStats(t, gw.url, "abr") {
		time.Sleep(200 * time.Millisecond)
	}
	assert.Positive(t, st.BytesFromPeers, "the proxies shared segments")
	t.Logf("gateway stats: offload %.2f, %+v", st.Offload, st.Counters)
}
