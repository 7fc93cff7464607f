//go:build e2e

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
)

// TestPeersOverWebRTC: three proxies that reach each other over WebRTC only (no neighbour
// port at all: --peer-transport ice), set up through the gateway's signalling, each played
// by ffmpeg for 14 s. They share segments, every peer byte crossed a WebRTC link, the
// gateway relayed the signals, and every player played.
func TestPeersOverWebRTC(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	origin := hlstest.StartOrigin(t, 4)
	st := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PollInterval: 500 * time.Millisecond, StatsFlushInterval: 500 * time.Millisecond,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.URL}}}}, 0)
	gw := st.gw
	for range 3 {
		p := st.add(t, peerassist.Config{PeerTransport: peerassist.TransportICE})
		require.Nil(t, p.node.Neighbour, "over WebRTC only: no neighbour port")
	}
	peers := st.peers
	st.playAll(t, 14)
	st.checkRecorders(t)
	var fromPeers, overLinks int64
	for _, p := range peers {
		st := p.node.Proxy.Status()
		fromPeers += st.Totals.BytesFromPeers
		require.NotNil(t, st.Links)
		for _, n := range st.Links.BytesReceived {
			overLinks += int64(n)
		}
		assert.Positive(t, st.Links.Connected, "links set up")
	}
	require.Positive(t, fromPeers, "the proxies shared segments")
	assert.GreaterOrEqual(t, overLinks, fromPeers, "every peer byte came over a WebRTC link (payload plus HTTP framing)")
	_, body := fetch(t, gw.url+"/metrics")
	assert.Regexp(t, `rawflow_gateway_tracker_signals_total\{result="relayed"\} [1-9]`, string(body))
	t.Logf("peer bytes %d, WebRTC payload bytes %d", fromPeers, overLinks)
}
