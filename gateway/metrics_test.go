package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

func TestGatewayMetrics(t *testing.T) {
	gw, base := statsGateway(t, swarm.NewMemory(swarm.Options{}))
	announce(t, base, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001", Stats: swarm.Counters{BytesFromGateway: 100, BytesFromPeers: 300, Stalls: 2}})
	gw.channelMap()["tv"].egress.Add(700)
	gw.channelMap()["tv"].direct.seen("10.0.0.9", time.Now())
	gw.flushEgress(t.Context())
	gw.sampleViewers(t.Context())
	resp, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "version=0.0.4")
	for _, line := range []string{
		`rawflow_gateway_egress_bytes_total{channel="tv"} 700`,
		`rawflow_gateway_requests_total{channel="tv",kind="tracker"} 1`,
		`rawflow_gateway_viewers{channel="tv",kind="assisted"} 1`,
		`rawflow_gateway_viewers{channel="tv",kind="direct"} 1`,
		`rawflow_swarm_bytes_total{channel="tv",source="peers"} 300`,
		`rawflow_swarm_bytes_total{channel="tv",source="gateway"} 100`,
		`rawflow_swarm_stalls_total{channel="tv"} 2`,
		`rawflow_swarm_offload_ratio{channel="tv"} 0.75`,
		`rawflow_ingest_source_errors_total{channel="tv"} 0`,
	} {
		assert.Contains(t, body, line+"\n")
	}
	// A name that is not a configured channel never becomes a label.
	gw.count("other", "tracker")
	_, body = get(t, base+"/metrics")
	assert.NotContains(t, body, `channel="other"`)
}
