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
	"github.com/rawflow/rawflow/swarm"
)

// TestOriginKinds: origins of every kind ffmpeg makes — live MPEG-TS, fMP4 (EXT-X-MAP, PDT),
// AES-128 and byte ranges, and VOD — play through the gateway and through a proxy, with no
// ffmpeg error and every byte (segments, init sections, keys) the gateway's.
func TestOriginKinds(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	for _, kind := range []hlstest.Kind{hlstest.TS, hlstest.FMP4, hlstest.AES, hlstest.ByteRange, hlstest.VOD} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			playKind(t, kind)
		})
	}
}

func playKind(t *testing.T, kind hlstest.Kind) {
	origin := hlstest.StartKind(t, kind, 3)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	gw, err := newGatewayNode("127.0.0.1:0", gateway.Config{PollInterval: 500 * time.Millisecond,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.URL}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	wg.Go(func() { assert.NoError(t, gw.run(ctx)) })
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)
	code, body := fetch(t, gw.url+"/live/tv/index.m3u8")
	require.Equal(t, 200, code)
	for _, want := range map[hlstest.Kind][]string{
		hlstest.FMP4:      {`#EXT-X-MAP:URI="init-`, "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-INDEPENDENT-SEGMENTS", ".m4s\n"},
		hlstest.AES:       {`#EXT-X-KEY:METHOD=AES-128,URI="key-`, "IV=0x"},
		hlstest.ByteRange: {"#EXTINF:"},
		hlstest.VOD:       {"#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST"},
	}[kind] {
		assert.Contains(t, string(body), want, "gateway playlist for %s", kind)
	}
	assert.NotContains(t, string(body), "BYTERANGE", "the gateway serves each range as an object of its own")
	p, err := newPeerNode("127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: gw.url})
	require.NoError(t, err)
	rec := &recorder{next: p.handler, gw: gw.srv, channel: "tv", seen: make(chan struct{}, 1000)}
	p.handler = rec
	wg.Go(func() { assert.NoError(t, p.run(ctx)) })

	urls := []string{gw.url + "/live/tv/index.m3u8", p.url + "/live/tv/index.m3u8"}
	results := make([]hlstest.PlayResult, len(urls))
	var players sync.WaitGroup
	for i, u := range urls {
		players.Go(func() { results[i] = hlstest.Play(ctx, t, u, 8) })
	}
	players.Wait()
	for i, r := range results {
		require.NoError(t, r.Err, "player %d: %s", i, r.Stderr)
		assert.Empty(t, r.Problems, "player %d", i)
		assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 6*time.Second, "player %d", i)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Empty(t, rec.bad, "bytes through the proxy that are not the gateway's")
	assert.Positive(t, rec.segments)
}
