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
	"github.com/rawflow/rawflow/swarm"
)

// TestOriginKinds: origins of every kind ffmpeg makes — live MPEG-TS, fMP4 (EXT-X-MAP, PDT),
// AES-128 and byte ranges, and VOD — play through the gateway and through a proxy, with no
// ffmpeg error and every byte (segments, init sections, keys) the gateway's.
func TestOriginKinds(t *testing.T) {
	t.Parallel()
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
	st := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PollInterval: 500 * time.Millisecond,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.URL}}}}, 1)
	gw, p := st.gw, st.peers[0]
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

	urls := []string{gw.url + "/live/tv/index.m3u8", p.url + "/live/tv/index.m3u8"}
	results := make([]hlstest.PlayResult, len(urls))
	var players sync.WaitGroup
	for i, u := range urls {
		players.Go(func() { results[i] = hlstest.Play(t.Context(), t, u, 8) })
	}
	players.Wait()
	for i, r := range results {
		require.NoError(t, r.Err, "player %d: %s", i, r.Stderr)
		assert.Empty(t, r.Problems, "player %d", i)
		assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 6*time.Second, "player %d", i)
	}
	st.checkRecorders(t)
	if kind != hlstest.ByteRange { // ranges are cut from one file: compared in gateway's unit tests
		assertFromOrigin(t, gw, origin)
	}
}

// assertFromOrigin checks that the segments and init sections the gateway lists are
// byte-identical to files the origin serves (allowing for one the encoder deleted since).
func assertFromOrigin(t *testing.T, gw *gatewayNode, origin *hlstest.Origin) {
	t.Helper()
	w := gatewayWindow(t, gw.url)
	files := origin.FileDigests(t)
	checked, missing := 0, 0
	for _, s := range w.Segments {
		if s.Size == 0 {
			continue // VOD: not fetched, no digest yet
		}
		checked++
		if _, ok := files[[32]byte(s.Digest)]; !ok {
			missing++
		}
	}
	assert.Positive(t, checked)
	assert.LessOrEqual(t, missing, 1, "gateway segments that are no origin file (%d checked)", checked)
}
