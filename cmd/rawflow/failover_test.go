//go:build e2e

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// TestFailoverWhilePlaying: the primary origin dies while ffmpeg plays from the gateway;
// the backup origin takes over after a discontinuity, the media sequence keeps rising and
// the player plays on without an error.
func TestFailoverWhilePlaying(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	primary, backup := hlstest.StartOrigin(t, 3), hlstest.StartOrigin(t, 3)
	gw := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PollInterval: 500 * time.Millisecond, MaxBackoff: time.Second,
		FailoverAfter: 2, Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{primary.URL, backup.URL}}}}, 0).gw
	before := gatewayWindow(t, gw.url)

	played := make(chan hlstest.PlayResult, 1)
	go func() { played <- hlstest.Play(t.Context(), t, gw.url+"/live/tv/index.m3u8", 16) }()
	// Kill the primary once the player has taken three segments from the gateway.
	for deadline := time.Now().Add(20 * time.Second); gatewayStats(t, gw.url, "tv").GatewayEgressBytes < 3*50_000; {
		require.True(t, time.Now().Before(deadline), "the player took nothing")
		time.Sleep(100 * time.Millisecond)
	}
	primary.Stop()
	r := <-played
	require.NoError(t, r.Err, r.Stderr)
	assert.Empty(t, r.Problems)
	assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 12*time.Second)

	after := gatewayWindow(t, gw.url)
	assert.Greater(t, after.MediaSequence, before.MediaSequence)
	disc := false
	for _, s := range after.Segments {
		disc = disc || s.Discontinuity
	}
	assert.True(t, disc || after.DiscontinuitySequence > before.DiscontinuitySequence, "the switch is marked")
}

func gatewayWindow(t *testing.T, base string) *playlist.Window {
	t.Helper()
	code, body := fetch(t, base+"/live/tv/index.m3u8?"+swarm.PeerPlaylistQuery)
	require.Equal(t, 200, code)
	w, err := playlist.ParseGateway(body)
	require.NoError(t, err)
	return w
}

// TestOriginRestartWhilePlaying: the broadcaster restarts its encoder (same URL, numbering
// from 0 again) while ffmpeg plays from the gateway; the gateway's media sequence keeps
// rising, the restart is a discontinuity, and the player plays on.
func TestOriginRestartWhilePlaying(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	origin := hlstest.StartOrigin(t, 4)
	gw := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PollInterval: 500 * time.Millisecond,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.URL}}}}, 0).gw
	before := gatewayWindow(t, gw.url)

	played := make(chan hlstest.PlayResult, 1)
	go func() { played <- hlstest.Play(t.Context(), t, gw.url+"/live/tv/index.m3u8", 16) }()
	for deadline := time.Now().Add(20 * time.Second); gatewayStats(t, gw.url, "tv").GatewayEgressBytes < 3*50_000; {
		require.True(t, time.Now().Before(deadline), "the player took nothing")
		time.Sleep(100 * time.Millisecond)
	}
	origin.Restart(t)
	r := <-played
	require.NoError(t, r.Err, r.Stderr)
	assert.Empty(t, r.Problems)
	assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 12*time.Second)

	after := gatewayWindow(t, gw.url)
	assert.Greater(t, after.MediaSequence, before.MediaSequence, "never back, though the origin restarted at 0")
	disc := false
	for _, s := range after.Segments {
		disc = disc || s.Discontinuity
	}
	assert.True(t, disc || after.DiscontinuitySequence > before.DiscontinuitySequence, "the restart is marked")
}
