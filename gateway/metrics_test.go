package gateway

import (
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/swarm"
)

// gatewayFamilies are the gateway's own families as README and deploy/grafana document
// them: type, label names and help. A change here is a change for every dashboard.
var gatewayFamilies = map[string]string{
	"rawflow_gateway_egress_bytes_total":            "counter [channel] Bytes of segments the gateway served.",
	"rawflow_gateway_event_streams":                 "gauge [] Proxies' event streams this gateway serves.",
	"rawflow_gateway_event_streams_opened_total":    "counter [] Event streams opened: proxies joining, and reconnecting (a stream that broke, a proxy whose subscription changed).",
	"rawflow_gateway_plans_sent_total":              "counter [] Distribution plans sent to proxies: each member's first, and each that changed (a cell's membership changed). Each change can make proxies open connections to new neighbours.",
	"rawflow_gateway_pace_rate_bytes":               "gauge [] Bytes per second segments are paced at: 85 % of --egress-limit, or below the uplink's estimate while it is saturated; 0: not paced.",
	"rawflow_gateway_segment_events_dropped_total":  "counter [] Segment events not sent to a stream that did not keep up (its proxy reads the playlist instead).",
	"rawflow_gateway_tracker_reports_clamped_total": "counter [] Proxy reports cut to what the proxy could have played or uploaded since its last report.",
	"rawflow_gateway_tracker_signals_total":         "counter [result] WebRTC signals (offers and answers) proxies sent, by result: relayed, unpaired (no plan pairs the two, or no offer to answer), elsewhere (the recipient has no stream on this gateway, and no fleet to pass it to), full (its queue was full), forwarded (passed to the fleet's other gateways).",
	"rawflow_gateway_tracker_refused_total":         "counter [reason] Tracker calls refused (429), by reason: joins (new proxies from one address), peer (calls of one proxy), address (all calls of one address), identities (proxies one address holds at once).",
	"rawflow_gateway_requests_total":                "counter [channel kind] Requests served, by kind: playlist, segment, tracker, held (a member's segment fetch held back while the uplink is saturated).",
	"rawflow_gateway_segment_fetches_total":         "counter [channel fetch] Segment requests served, by what the requester said it was (RawFlow-Fetch): root (its cell's one copy, which the swarm spreads), member (its swarm did not deliver in time), other (a player, or a proxy with no plan yet).",
	"rawflow_gateway_segments_listed_total":         "counter [channel] Segments the gateway listed.",
	"rawflow_gateway_viewers":                       "gauge [channel kind] Viewers: assisted (proxies registered, fleet-wide), direct (players of this gateway, last 30 s).",
	"rawflow_gateway_window_bytes":                  "gauge [channel] Bytes of segments held in RAM.",
	"rawflow_gateway_window_segments":               "gauge [channel] Segments held in RAM (listed and retired).",
	"rawflow_ingest_source_errors_total":            "counter [channel] Failed origin polls or source connections.",
	"rawflow_swarm_bytes_total":                     "counter [channel source] Bytes proxies reported, by source: gateway, peers, uploaded (fleet-wide).",
	"rawflow_swarm_integrity_failures_total":        "counter [channel] Segments from peers that failed verification (fleet-wide).",
	"rawflow_swarm_offload_ratio":                   "gauge [channel] Share of player bytes peers carried over the last minute.",
	"rawflow_swarm_peers_banned_total":              "counter [channel] Peers banned by the trackers (fleet-wide).",
	"rawflow_swarm_stalls_total":                    "counter [channel] Player stalls proxies reported (fleet-wide).",
}

// scrape parses url's text exposition into its families by name.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// signatures describes the families whose names start with prefix as gatewayFamilies
// does: type, the sorted union of their label names, help.
func signatures(fams map[string]*dto.MetricFamily, prefix string) map[string]string {
	out := map[string]string{}
	for name, f := range fams {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		slices.Sort(labels)
		typ := strings.ToLower(f.GetType().String())
		out[name] = typ + " [" + strings.Join(labels, " ") + "] " + f.GetHelp()
	}
	return out
}

func TestGatewayMetricFamilies(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, front := newTestServer(t, o)
	require.NoError(t, poll(t, s))
	get(t, front.URL+"/live/tv/index.m3u8")

	fams := scrape(t, front.URL+"/metrics")
	assert.Equal(t, gatewayFamilies, signatures(fams, "rawflow_"))
	assert.Equal(t, 3.0, fams["rawflow_gateway_segments_listed_total"].GetMetric()[0].GetCounter().GetValue())
	assert.Equal(t, 3000.0, fams["rawflow_gateway_window_bytes"].GetMetric()[0].GetGauge().GetValue())
	assert.Contains(t, fams, "go_goroutines")
	assert.Contains(t, fams, "go_memstats_heap_alloc_bytes")
	if runtime.GOOS == "linux" {
		assert.Contains(t, fams, "process_resident_memory_bytes")
		assert.Contains(t, fams, "process_cpu_seconds_total")
	}
}

// TestGatewayMetricsBeforeDiscovery: a channel whose renditions are unknown has no window
// series (nothing to count yet), but its other series.
func TestGatewayMetricsBeforeDiscovery(t *testing.T) {
	_, base := statsGateway(t, swarm.NewMemory(swarm.Options{}))
	fams := scrape(t, base+"/metrics")
	for _, name := range []string{"rawflow_gateway_segments_listed_total", "rawflow_gateway_window_segments", "rawflow_gateway_window_bytes"} {
		assert.NotContains(t, fams, name)
	}
	assert.Contains(t, fams, "rawflow_gateway_egress_bytes_total")
	assert.Contains(t, fams, "rawflow_swarm_bytes_total")
}

// TestGatewayCollectorOneSnapshot: a scrape takes one snapshot and every family comes from
// it. Each snapshot here differs from the one before in every figure, so a family read
// from a second one would not match.
func TestGatewayCollectorOneSnapshot(t *testing.T) {
	calls := 0
	c := newGatewayCollector(func() []channelMetrics {
		calls++
		n := int64(calls)
		return []channelMetrics{{name: "tv", egressBytes: 100 * n, sourceErrors: n, discovered: true,
			segmentsListed: uint64(2 * n), windowSegments: int(3 * n), windowBytes: 400 * n, directViewers: int(5 * n),
			swarm: swarm.ChannelStats{ActivePeers: int(6 * n), Counters: swarm.Counters{BytesFromGateway: 70 * n,
				BytesFromPeers: 80 * n, BytesUploaded: 90 * n, Stalls: 11 * n, IntegrityFailures: 12 * n, PeersBanned: 13 * n}},
			offload: 0.25 * float64(n)}}
	})
	const want = `
# HELP rawflow_gateway_egress_bytes_total Bytes of segments the gateway served.
# TYPE rawflow_gateway_egress_bytes_total counter
rawflow_gateway_egress_bytes_total{channel="tv"} 100
# HELP rawflow_gateway_segments_listed_total Segments the gateway listed.
# TYPE rawflow_gateway_segments_listed_total counter
rawflow_gateway_segments_listed_total{channel="tv"} 2
# HELP rawflow_gateway_viewers Viewers: assisted (proxies registered, fleet-wide), direct (players of this gateway, last 30 s).
# TYPE rawflow_gateway_viewers gauge
rawflow_gateway_viewers{channel="tv",kind="assisted"} 6
rawflow_gateway_viewers{channel="tv",kind="direct"} 5
# HELP rawflow_gateway_window_bytes Bytes of segments held in RAM.
# TYPE rawflow_gateway_window_bytes gauge
rawflow_gateway_window_bytes{channel="tv"} 400
# HELP rawflow_gateway_window_segments Segments held in RAM (listed and retired).
# TYPE rawflow_gateway_window_segments gauge
rawflow_gateway_window_segments{channel="tv"} 3
# HELP rawflow_ingest_source_errors_total Failed origin polls or source connections.
# TYPE rawflow_ingest_source_errors_total counter
rawflow_ingest_source_errors_total{channel="tv"} 1
# HELP rawflow_swarm_bytes_total Bytes proxies reported, by source: gateway, peers, uploaded (fleet-wide).
# TYPE rawflow_swarm_bytes_total counter
rawflow_swarm_bytes_total{channel="tv",source="gateway"} 70
rawflow_swarm_bytes_total{channel="tv",source="peers"} 80
rawflow_swarm_bytes_total{channel="tv",source="uploaded"} 90
# HELP rawflow_swarm_integrity_failures_total Segments from peers that failed verification (fleet-wide).
# TYPE rawflow_swarm_integrity_failures_total counter
rawflow_swarm_integrity_failures_total{channel="tv"} 12
# HELP rawflow_swarm_offload_ratio Share of player bytes peers carried over the last minute.
# TYPE rawflow_swarm_offload_ratio gauge
rawflow_swarm_offload_ratio{channel="tv"} 0.25
# HELP rawflow_swarm_peers_banned_total Peers banned by the trackers (fleet-wide).
# TYPE rawflow_swarm_peers_banned_total counter
rawflow_swarm_peers_banned_total{channel="tv"} 13
# HELP rawflow_swarm_stalls_total Player stalls proxies reported (fleet-wide).
# TYPE rawflow_swarm_stalls_total counter
rawflow_swarm_stalls_total{channel="tv"} 11
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
	assert.Equal(t, 1, calls, "one snapshot per scrape")
}

// TestGatewaySnapshotSumsRenditions: the window families sum a channel's renditions.
func TestGatewaySnapshotSumsRenditions(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, _ := newTestServer(t, o)
	require.NoError(t, poll(t, s))
	ch := s.channelMap()["tv"]
	ch.mu.Lock()
	ch.renditions["second"] = ch.renditions[""] // the same window twice: twice its figures
	ch.mu.Unlock()
	ch.egress.Add(700)
	got := s.metricsSnapshot()
	require.Len(t, got, 1)
	assert.Equal(t, "tv", got[0].name)
	assert.True(t, got[0].discovered)
	assert.Equal(t, uint64(6), got[0].segmentsListed)
	assert.Equal(t, 6, got[0].windowSegments)
	assert.Equal(t, int64(6000), got[0].windowBytes)
	assert.Equal(t, int64(700), got[0].egressBytes)
}

func TestCountOnlyConfiguredChannels(t *testing.T) {
	s, _ := statsGateway(t, swarm.NewMemory(swarm.Options{}))
	s.count("tv", "segment")
	s.count("tv", "segment")
	s.count("other", "segment")
	assert.Equal(t, 2.0, testutil.ToFloat64(s.requests.WithLabelValues("tv", "segment")))
	assert.Equal(t, 1, testutil.CollectAndCount(s.requests), "no series for a name that is not a channel")
}

func BenchmarkCount(b *testing.B) {
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/live.m3u8"}}}},
		swarm.NewMemory(swarm.Options{}))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		s.count("tv", "segment")
	}
}

func TestGatewayMetrics(t *testing.T) {
	gw, base := statsGateway(t, swarm.NewMemory(swarm.Options{}))
	join(t, base, swarm.Subscription{Channel: "tv", Addr: ":9001"}, swarm.ReportRequest{Stats: swarm.Counters{BytesFromGateway: 100, BytesFromPeers: 300, BytesUploaded: 300, Stalls: 2}})
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
		`rawflow_gateway_requests_total{channel="tv",kind="tracker"} 2`, // a stream and a report
		`rawflow_gateway_viewers{channel="tv",kind="assisted"} 1`,
		`rawflow_gateway_viewers{channel="tv",kind="direct"} 1`,
		`rawflow_swarm_bytes_total{channel="tv",source="peers"} 300`,
		`rawflow_swarm_bytes_total{channel="tv",source="gateway"} 100`,
		`rawflow_swarm_stalls_total{channel="tv"} 2`,
		`rawflow_swarm_bytes_total{channel="tv",source="uploaded"} 300`,
		`rawflow_swarm_offload_ratio{channel="tv"} 0.75`, // confirmed by the upload
		`rawflow_ingest_source_errors_total{channel="tv"} 0`,
	} {
		assert.Contains(t, body, line+"\n")
	}
	// A name that is not a configured channel never becomes a label.
	gw.count("other", "tracker")
	_, body = get(t, base+"/metrics")
	assert.NotContains(t, body, `channel="other"`)
}
