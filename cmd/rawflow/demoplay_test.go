//go:build e2e

package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/swarm"
)

// TestDemoSourcePlaysSeamlessly: ffmpeg plays the built-in source through a proxy for 30 s
// — across at least three of its 8 s loop points — without a single warning (no corrupt
// packet, no non-monotonic timestamp, no discontinuity), and records 30 s of it.
func TestDemoSourcePlaysSeamlessly(t *testing.T) {
	t.Parallel()
	hlstest.RequireTool(t, "ffmpeg")
	r := newRunner(t)
	origin := r.demoOrigin(t)
	st := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback,
		Channels: []gateway.ChannelConfig{{Name: "demo", Sources: []string{origin.url}}}}, 1)
	play := hlstest.Play(r.ctx, t, st.peers[0].url+"/live/demo/index.m3u8", 30)
	require.NoError(t, play.Err, play.Stderr)
	assert.Empty(t, strings.TrimSpace(play.Stderr), "ffmpeg warned while playing the demo source")
	got := hlstest.Duration(t, play.Output)
	assert.InDelta(t, 30, got.Seconds(), 0.5, "recorded %s", got)
	// The recording itself reads back clean: timestamps rise across every loop point.
	out, err := exec.CommandContext(r.ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "warning",
		"-i", play.Output, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(out)), "the recording has timestamp problems")
}
