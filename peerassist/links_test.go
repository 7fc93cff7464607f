package peerassist

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// TestUnreachableLinkBacksOff: a source reached over WebRTC only whose link cannot be set up
// (here the gateway relays no signal) costs the fetches nothing but a try of the next rung:
// every segment comes from the gateway, no failure is held against the source (failures
// in a row get a neighbour reported), and the set-up is not tried again for every segment.
func TestUnreachableLinkBacksOff(t *testing.T) {
	gw := newFakeGateway(6)
	gw.setSources(swarm.Source{ID: strings.Repeat("ab", 16), ICE: true}) // no address: WebRTC only
	p := startProxy(t, gw, nil)
	for _, s := range gw.window.Segments {
		resp, body := httpGet(t, p.player.URL+"/live/tv/"+s.Name+"?CMCD=bl%3D10000")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	st := p.Status()
	assert.Equal(t, int64(6), st.Channels["tv"].SegmentsFromGateway)
	assert.Zero(t, st.Channels["tv"].NeighbourFailures, "a link that does not come up is not the source's fault")
	gw.mu.Lock()
	signals := gw.hits["signal"]
	gw.mu.Unlock()
	assert.Positive(t, signals, "the link was tried")
	assert.LessOrEqual(t, signals, 2, "and not again for each segment")
	require.NotNil(t, st.Links)
	assert.Positive(t, st.Links.Failed)
}
