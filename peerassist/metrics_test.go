package peerassist

import (
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

func TestProxyMetricsAndCORS(t *testing.T) {
	gw := newFakeGateway(4)
	tp := startProxy(t, gw, func(c *Config) { c.AllowOrigins = []string{"https://broadcaster.example"} })
	seg := gw.window.Segments[0]
	get, err := http.NewRequest(http.MethodGet, tp.player.URL+"/live/tv/"+seg.Name, nil)
	require.NoError(t, err)
	get.Header.Set("Origin", "https://broadcaster.example")
	resp, err := http.DefaultClient.Do(get)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "https://broadcaster.example", resp.Header.Get("Access-Control-Allow-Origin"), "web players of an allowed origin may play through the proxy")
	tp.settle(t)

	resp, body := httpGet(t, tp.player.URL+"/metrics")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	for _, line := range []string{
		`rawflow_peer_bytes_total{channel="tv",source="gateway"} ` + itoa(seg.Size),
		`rawflow_peer_segments_total{channel="tv",source="gateway"} 1`,
		`rawflow_peer_stalls_total{channel="tv"} 0`,
		`rawflow_peer_startup_seconds_count 1`,
	} {
		assert.Contains(t, body, line+"\n")
	}
	assert.Contains(t, body, "rawflow_peer_cache_bytes ")

	// A preflight from a public page to this private address.
	req, err := http.NewRequest(http.MethodOptions, tp.player.URL+"/live/tv/index.m3u8", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://broadcaster.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Private-Network", "true")
	pre, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	pre.Body.Close()
	assert.Equal(t, http.StatusNoContent, pre.StatusCode)
	assert.Equal(t, "https://broadcaster.example", pre.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", pre.Header.Get("Access-Control-Allow-Private-Network"))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// proxyFamilies are the proxy's own families as README and deploy/grafana document them:
// type, label names and help. A change here is a change for every dashboard.
var proxyFamilies = map[string]string{
	"rawflow_peer_bytes_total":              "counter [channel source] Segment bytes by source: gateway, peers (received), uploaded (sent to peers).",
	"rawflow_peer_cache_bytes":              "gauge [] Bytes in the segment cache.",
	"rawflow_peer_integrity_failures_total": "counter [channel] Segments from neighbours that failed verification.",
	"rawflow_peer_neighbour_failures_total": "counter [channel] Failed neighbour transfers.",
	"rawflow_peer_neighbours":               "gauge [channel] Neighbours the proxy knows (across its channels).",
	"rawflow_peer_segments_total":           "counter [channel source] Segments served to the player, by source: cache, peers, gateway.",
	"rawflow_peer_stalls_total":             "counter [channel] Player stalls seen from its requests.",
	"rawflow_peer_startup_seconds":          "histogram [] Player startup: first playlist request to first segment delivered.",
	"rawflow_peer_links":                    "gauge [type] WebRTC links to neighbours up now, by how they travel: host (a direct UDP path), srflx or prflx (through NATs, addresses found by STUN or by the peer), relay (through TURN).",
	"rawflow_peer_link_bytes_total":         "counter [direction type] Bytes over WebRTC links (HTTP requests and responses), by link type and direction (sent, received).",
	"rawflow_peer_link_setups_total":        "counter [result] WebRTC links set up, by result: connected, failed (no answer, ICE or DTLS did not complete), refused (too many links).",
	"rawflow_peer_port_mapped":              "gauge [method] 1 while the router forwards the neighbour port, by how it was asked (nat-pmp, upnp); 0 otherwise.",
	"rawflow_peer_swarm_misses_total":       "counter [cause channel] Member fetches the swarm missed (then made from the gateway), by what the last source tried did: resting, pending, busy, late, failed, time.",
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

// signatures describes the families whose names start with prefix as proxyFamilies does:
// type, the sorted union of their label names, help.
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

func TestProxyMetricFamilies(t *testing.T) {
	gw := newFakeGateway(4)
	tp := startProxy(t, gw, nil)
	resp, _ := httpGet(t, tp.player.URL+"/live/tv/"+gw.window.Segments[0].Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	tp.settle(t)

	fams := scrape(t, tp.player.URL+"/metrics")
	assert.Equal(t, proxyFamilies, signatures(fams, "rawflow_"))
	h := fams["rawflow_peer_startup_seconds"].GetMetric()[0].GetHistogram()
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	assert.Equal(t, []float64{0.25, 0.5, 1, 2, 4, 8, math.Inf(1)}, bounds, "the buckets dashboards chart")
	assert.Equal(t, uint64(1), h.GetSampleCount())
	assert.Contains(t, fams, "go_goroutines")
	assert.Contains(t, fams, "go_memstats_heap_alloc_bytes")
	if runtime.GOOS == "linux" {
		assert.Contains(t, fams, "process_resident_memory_bytes")
		assert.Contains(t, fams, "process_cpu_seconds_total")
	}
}

// TestProxyCollectorOneSnapshot: a scrape takes one snapshot and every family comes from
// it. Each snapshot here differs from the one before in every figure, so a family read
// from a second one would not match.
func TestProxyCollectorOneSnapshot(t *testing.T) {
	calls := 0
	c := newProxyCollector(func() proxyMetrics {
		calls++
		n := int64(calls)
		st := ChannelStatus{Counters: swarm.Counters{BytesFromGateway: 100 * n, BytesFromPeers: 200 * n, BytesUploaded: 300 * n,
			SegmentsFromGateway: 4 * n, SegmentsFromPeers: 5 * n, IntegrityFailures: 6 * n, NeighbourFailures: 7 * n, Stalls: 8 * n},
			CacheHits: 9 * n, SwarmMisses: map[string]int64{"pending": 10 * n, "failed": 11 * n}}
		return proxyMetrics{status: Status{Channels: map[string]ChannelStatus{"tv": st}, CacheBytes: 1000 * n,
			PortMapping: &PortMapping{External: "11.0.0.2:40000", Method: "nat-pmp"}}, neighbours: int(3 * n)}
	})
	const want = `
# HELP rawflow_peer_bytes_total Segment bytes by source: gateway, peers (received), uploaded (sent to peers).
# TYPE rawflow_peer_bytes_total counter
rawflow_peer_bytes_total{channel="tv",source="gateway"} 100
rawflow_peer_bytes_total{channel="tv",source="peers"} 200
rawflow_peer_bytes_total{channel="tv",source="uploaded"} 300
# HELP rawflow_peer_cache_bytes Bytes in the segment cache.
# TYPE rawflow_peer_cache_bytes gauge
rawflow_peer_cache_bytes 1000
# HELP rawflow_peer_integrity_failures_total Segments from neighbours that failed verification.
# TYPE rawflow_peer_integrity_failures_total counter
rawflow_peer_integrity_failures_total{channel="tv"} 6
# HELP rawflow_peer_neighbour_failures_total Failed neighbour transfers.
# TYPE rawflow_peer_neighbour_failures_total counter
rawflow_peer_neighbour_failures_total{channel="tv"} 7
# HELP rawflow_peer_neighbours Neighbours the proxy knows (across its channels).
# TYPE rawflow_peer_neighbours gauge
rawflow_peer_neighbours{channel="tv"} 3
# HELP rawflow_peer_swarm_misses_total Member fetches the swarm missed (then made from the gateway), by what the last source tried did: resting, pending, busy, late, failed, time.
# TYPE rawflow_peer_swarm_misses_total counter
rawflow_peer_swarm_misses_total{cause="busy",channel="tv"} 0
rawflow_peer_swarm_misses_total{cause="failed",channel="tv"} 11
rawflow_peer_swarm_misses_total{cause="late",channel="tv"} 0
rawflow_peer_swarm_misses_total{cause="pending",channel="tv"} 10
rawflow_peer_swarm_misses_total{cause="resting",channel="tv"} 0
rawflow_peer_swarm_misses_total{cause="time",channel="tv"} 0
# HELP rawflow_peer_port_mapped 1 while the router forwards the neighbour port, by how it was asked (nat-pmp, upnp); 0 otherwise.
# TYPE rawflow_peer_port_mapped gauge
rawflow_peer_port_mapped{method="nat-pmp"} 1
rawflow_peer_port_mapped{method="upnp"} 0
# HELP rawflow_peer_segments_total Segments served to the player, by source: cache, peers, gateway.
# TYPE rawflow_peer_segments_total counter
rawflow_peer_segments_total{channel="tv",source="cache"} 9
rawflow_peer_segments_total{channel="tv",source="gateway"} 4
rawflow_peer_segments_total{channel="tv",source="peers"} 5
# HELP rawflow_peer_stalls_total Player stalls seen from its requests.
# TYPE rawflow_peer_stalls_total counter
rawflow_peer_stalls_total{channel="tv"} 8
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
	assert.Equal(t, 1, calls, "one snapshot per scrape")
}

// TestProxyMetricsMatchStatus: on a real proxy, what a scrape exports is the Status of
// the one snapshot it took, series for series.
func TestProxyMetricsMatchStatus(t *testing.T) {
	gw := newFakeGateway(4)
	tp := startProxy(t, gw, nil)
	for _, seg := range gw.window.Segments[:2] {
		resp, _ := httpGet(t, tp.player.URL+"/live/tv/"+seg.Name)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	resp, _ := httpGet(t, tp.player.URL+"/live/tv/"+gw.window.Segments[0].Name) // a cache hit
	require.Equal(t, http.StatusOK, resp.StatusCode)
	tp.settle(t)

	var snaps []proxyMetrics
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newProxyCollector(func() proxyMetrics {
		m := tp.metricsSnapshot()
		snaps = append(snaps, m)
		return m
	}))
	got, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, snaps, 1, "one snapshot per scrape")
	st := snaps[0].status.Channels["tv"]
	require.Positive(t, st.BytesFromGateway)
	require.Positive(t, st.CacheHits)
	want := map[string]float64{
		`rawflow_peer_bytes_total{channel="tv",source="gateway"}`:    float64(st.BytesFromGateway),
		`rawflow_peer_bytes_total{channel="tv",source="peers"}`:      float64(st.BytesFromPeers),
		`rawflow_peer_bytes_total{channel="tv",source="uploaded"}`:   float64(st.BytesUploaded),
		`rawflow_peer_segments_total{channel="tv",source="cache"}`:   float64(st.CacheHits),
		`rawflow_peer_segments_total{channel="tv",source="gateway"}`: float64(st.SegmentsFromGateway),
		`rawflow_peer_segments_total{channel="tv",source="peers"}`:   float64(st.SegmentsFromPeers),
		`rawflow_peer_integrity_failures_total{channel="tv"}`:        float64(st.IntegrityFailures),
		`rawflow_peer_neighbour_failures_total{channel="tv"}`:        float64(st.NeighbourFailures),
		`rawflow_peer_stalls_total{channel="tv"}`:                    float64(st.Stalls),
		`rawflow_peer_neighbours{channel="tv"}`:                      float64(snaps[0].neighbours),
		`rawflow_peer_cache_bytes`:                                   float64(snaps[0].status.CacheBytes),
		`rawflow_peer_port_mapped{method="nat-pmp"}`:                 0,
		`rawflow_peer_port_mapped{method="upnp"}`:                    0,
	}
	for _, cause := range missCauseNames {
		want[`rawflow_peer_swarm_misses_total{cause="`+cause+`",channel="tv"}`] = float64(st.SwarmMisses[cause])
	}
	links := snaps[0].status.Links
	require.NotNil(t, links)
	for _, typ := range []string{"host", "srflx", "prflx", "relay"} {
		want[`rawflow_peer_links{type="`+typ+`"}`] = float64(links.PeersUp[typ])
		want[`rawflow_peer_link_bytes_total{direction="sent",type="`+typ+`"}`] = float64(links.BytesSent[typ])
		want[`rawflow_peer_link_bytes_total{direction="received",type="`+typ+`"}`] = float64(links.BytesReceived[typ])
	}
	want[`rawflow_peer_link_setups_total{result="connected"}`] = float64(links.Connected)
	want[`rawflow_peer_link_setups_total{result="failed"}`] = float64(links.Failed)
	want[`rawflow_peer_link_setups_total{result="refused"}`] = float64(links.Refused)
	assert.Equal(t, want, flatten(got))
}

// flatten maps each counter and gauge series to its value, keyed as the text format
// writes it (labels in the order of the family's).
func flatten(fams []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := f.GetName()
			if len(pairs) > 0 {
				key += "{" + strings.Join(pairs, ",") + "}"
			}
			out[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}
