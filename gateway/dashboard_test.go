package gateway

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/swarm"
)

// dashboardGateway is a gateway on the given registry, with its handler on a test server.
func dashboardGateway(t *testing.T, reg Registry) (*Server, string) {
	t.Helper()
	s, err := New(Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/live.m3u8"}}},
		PricePerGB: 0.05, EventsInterval: 50 * time.Millisecond}, reg)
	require.NoError(t, err)
	front := httptest.NewServer(s.Handler())
	t.Cleanup(front.Close)
	return s, front.URL
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, body := get(t, url)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.NoError(t, json.Unmarshal([]byte(body), v))
}

// TestDashboardTwoGatewaysOneRedis: two gateways of a fleet write reports and egress to one
// Redis; the API of either sums both.
func TestDashboardTwoGatewaysOneRedis(t *testing.T) {
	url := redistest.Start(t)
	open := func() Registry {
		reg, err := swarm.OpenRedis(url, swarm.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { reg.Close() })
		return reg
	}
	gw1, base1 := dashboardGateway(t, open())
	gw2, base2 := dashboardGateway(t, open())

	announce(t, base1, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001", Group: "paris",
		Stats:      swarm.Counters{BytesFromGateway: 1000, BytesFromPeers: 3000, Stalls: 1, Startups: 2, StartupMillis: 1000},
		Renditions: map[string]swarm.Counters{"r0": {BytesFromGateway: 1000, BytesFromPeers: 3000}},
		FedBy:      map[string]int64{"lyon": 2000, "paris": 1000}})
	announce(t, base2, swarm.AnnounceRequest{Channel: "tv", Addr: ":9002", Group: "lyon",
		Stats: swarm.Counters{BytesFromPeers: 6000, Startups: 1, StartupMillis: 400}, FedBy: map[string]int64{"paris": 6000}})
	gw1.channelMap()["tv"].egress.Add(700)
	gw2.channelMap()["tv"].egress.Add(300)
	gw1.flushEgress(t.Context())
	gw2.flushEgress(t.Context())
	gw1.channelMap()["tv"].direct.seen("10.0.0.1", time.Now())
	gw2.channelMap()["tv"].direct.seen("10.0.0.2", time.Now())
	gw2.channelMap()["tv"].direct.seen("10.0.0.3", time.Now())
	gw1.sampleViewers(t.Context())
	gw2.sampleViewers(t.Context())

	for _, base := range []string{base1, base2} {
		var ov Overview
		getJSON(t, base+"/api/v1/overview", &ov)
		require.Len(t, ov.Channels, 1)
		tv := ov.Channels[0]
		assert.Equal(t, "tv", tv.Name)
		assert.InDelta(t, 9000.0/10000, tv.Offload, 1e-9)
		assert.Equal(t, int64(2), tv.ViewersAssisted)
		assert.Equal(t, int64(3), tv.ViewersDirect, "each gateway's direct players add up")
		assert.Equal(t, int64(1), tv.Stalls)
		assert.Equal(t, int64(1400/3), tv.StartupMillis)
		assert.Equal(t, int64(9000), tv.BytesSaved)
		assert.InDelta(t, 9000/1e9*0.05, tv.MoneySaved, 1e-12)
		assert.Positive(t, tv.GatewayMbps)
		assert.Equal(t, tv.Figures.Offload, ov.Total.Offload)
		assert.Equal(t, 0.05, ov.PricePerGB)
		assert.Equal(t, "USD", ov.Currency)

		var series Series
		getJSON(t, base+"/api/v1/channels/tv/series", &series)
		assert.Equal(t, int64(10), series.Step)
		var gwBytes, peerBytes int64
		for _, p := range series.Points {
			gwBytes += p.GatewayBytes
			peerBytes += p.PeerBytes
		}
		assert.Equal(t, int64(1000), gwBytes, "egress of both gateways")
		assert.Equal(t, int64(9000), peerBytes)

		var bd Breakdown
		getJSON(t, base+"/api/v1/channels/tv/breakdown", &bd)
		assert.Equal(t, []Split{{Name: "r0", GatewayBytes: 1000, PeerBytes: 3000, Offload: 0.75}}, bd.Renditions)
		assert.Equal(t, []Split{{Name: "lyon", PeerBytes: 6000, Offload: 1}, {Name: "paris", GatewayBytes: 1000, PeerBytes: 3000, Offload: 0.75}}, bd.Groups)
		assert.Equal(t, []swarm.Feed{{From: "lyon", To: "paris", Bytes: 2000}, {From: "paris", To: "lyon", Bytes: 6000}, {From: "paris", To: "paris", Bytes: 1000}}, bd.Feeds)
	}
}

func TestDashboardExportAndEvents(t *testing.T) {
	gw, base := dashboardGateway(t, swarm.NewMemory(swarm.Options{}))
	announce(t, base, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001", Stats: swarm.Counters{BytesFromGateway: 10, BytesFromPeers: 30}})
	gw.channelMap()["tv"].egress.Add(10)
	gw.flushEgress(t.Context())

	now := time.Now().Unix()
	resp, body := get(t, base+"/api/v1/channels/tv/export.csv?from="+strconv.FormatInt(now-120, 10)+"&to="+strconv.FormatInt(now, 10)+"&step=60")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	lines := strings.Split(strings.TrimSpace(body), "\n")
	assert.Equal(t, "time,gateway_bytes,peer_bytes,uploaded_bytes,offload,viewers_assisted,viewers_direct,stalls,startups,startup_ms,integrity_failures,peers_banned", lines[0])
	assert.Len(t, lines, 1+3, "one row per minute of the range")
	assert.Contains(t, body, ",10,30,0,0.7500,")

	for _, bad := range []string{"?from=x", "?from=100&to=50", "?step=-1", "?from=0&to=99999999"} {
		resp, _ := get(t, base+"/api/v1/channels/tv/series"+bad)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}
	resp, _ = get(t, base+"/api/v1/channels/nope/series")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Events: the overview at once, then every EventsInterval.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/events", nil)
	require.NoError(t, err)
	sse, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer sse.Body.Close()
	assert.Equal(t, "text/event-stream", sse.Header.Get("Content-Type"))
	sc := bufio.NewScanner(sse.Body)
	var events int
	for sc.Scan() && events < 3 {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ov Overview
			require.NoError(t, json.Unmarshal([]byte(data), &ov))
			assert.InDelta(t, 0.75, ov.Total.Offload, 1e-9)
			events++
		}
	}
	assert.Equal(t, 3, events)
}

func TestGatewayMetrics(t *testing.T) {
	gw, base := dashboardGateway(t, swarm.NewMemory(swarm.Options{}))
	announce(t, base, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001", Stats: swarm.Counters{BytesFromGateway: 100, BytesFromPeers: 300, Stalls: 2}})
	gw.channelMap()["tv"].egress.Add(700)
	gw.channelMap()["tv"].direct.seen("10.0.0.9", time.Now())
	gw.flushEgress(t.Context())
	gw.sampleViewers(t.Context())
	resp, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "version=0.0.4")
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
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
