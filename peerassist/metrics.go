package peerassist

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rawflow/rawflow/internal/portmap"
	"github.com/rawflow/rawflow/peerlink"
)

// The proxy's Prometheus metrics (GET /metrics on the player port), read at scrape time
// from one snapshot of its own counters (metricsSnapshot), but for the startup histogram,
// observed as players start. Labels are the channels the proxy plays and fixed sources:
// bounded by maxChannels.

// startupBuckets are the bounds of rawflow_peer_startup_seconds.
var startupBuckets = []float64{0.25, 0.5, 1, 2, 4, 8}

// proxyMetrics is the proxy's figures at one instant, as a scrape exports them.
type proxyMetrics struct {
	status     Status
	neighbours int // known, across channels
}

// metricsSnapshot reads the proxy's figures once; the collector uses nothing else.
func (p *Proxy) metricsSnapshot() proxyMetrics {
	return proxyMetrics{status: p.Status(), neighbours: p.neigh.count()}
}

// newMetrics makes the proxy's registry (its own families, Go runtime and process) and the
// handler of GET /metrics.
func (p *Proxy) newMetrics() {
	p.startup = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rawflow_peer_startup_seconds",
		Help: "Player startup: first playlist request to first segment delivered.", Buckets: startupBuckets})
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.startup, newProxyCollector(p.metricsSnapshot),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError, // a failing collector leaves the others served
	})
	p.metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store") // never a cached scrape
		h.ServeHTTP(w, r)
	})
}

// observeStartup records a player's startup in the histogram.
func (p *Proxy) observeStartup(d time.Duration) {
	if p.startup != nil {
		p.startup.Observe(d.Seconds())
	}
}

// proxyCollector exports the families read at scrape time, all from one snapshot.
type proxyCollector struct {
	snapshot func() proxyMetrics

	bytes, segments, integrityFailures, neighbourFailures, stalls, cacheBytes, neighbours *prometheus.Desc
	links, linkBytes, linkResults                                                         *prometheus.Desc
	portMapped, swarmMisses                                                               *prometheus.Desc
}

func newProxyCollector(snapshot func() proxyMetrics) *proxyCollector {
	channel := []string{"channel"}
	bySource := []string{"channel", "source"}
	return &proxyCollector{
		snapshot: snapshot,
		bytes: prometheus.NewDesc("rawflow_peer_bytes_total",
			"Segment bytes by source: gateway, peers (received), uploaded (sent to peers).", bySource, nil),
		segments: prometheus.NewDesc("rawflow_peer_segments_total",
			"Segments served to the player, by source: cache, peers, gateway.", bySource, nil),
		integrityFailures: prometheus.NewDesc("rawflow_peer_integrity_failures_total",
			"Segments from neighbours that failed verification.", channel, nil),
		neighbourFailures: prometheus.NewDesc("rawflow_peer_neighbour_failures_total", "Failed neighbour transfers.", channel, nil),
		stalls:            prometheus.NewDesc("rawflow_peer_stalls_total", "Player stalls seen from its requests.", channel, nil),
		cacheBytes:        prometheus.NewDesc("rawflow_peer_cache_bytes", "Bytes in the segment cache.", nil, nil),
		neighbours: prometheus.NewDesc("rawflow_peer_neighbours",
			"Neighbours the proxy knows (across its channels).", channel, nil),
		links: prometheus.NewDesc("rawflow_peer_links",
			"WebRTC links to neighbours up now, by how they travel: host (a direct UDP path), srflx or prflx (through NATs, addresses found by STUN or by the peer), relay (through TURN).",
			[]string{"type"}, nil),
		linkBytes: prometheus.NewDesc("rawflow_peer_link_bytes_total",
			"Bytes over WebRTC links (HTTP requests and responses), by link type and direction (sent, received).",
			[]string{"type", "direction"}, nil),
		linkResults: prometheus.NewDesc("rawflow_peer_link_setups_total",
			"WebRTC links set up, by result: connected, failed (no answer, ICE or DTLS did not complete), refused (too many links).",
			[]string{"result"}, nil),
		swarmMisses: prometheus.NewDesc("rawflow_peer_swarm_misses_total",
			"Member fetches the swarm missed (then made from the gateway), by what the last source tried did: resting, pending, busy, late, failed, time.",
			[]string{"channel", "cause"}, nil),
		portMapped: prometheus.NewDesc("rawflow_peer_port_mapped",
			"1 while the router forwards the neighbour port, by how it was asked (nat-pmp, upnp); 0 otherwise.",
			[]string{"method"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *proxyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.segments, c.integrityFailures, c.neighbourFailures,
		c.stalls, c.cacheBytes, c.neighbours, c.links, c.linkBytes, c.linkResults, c.portMapped, c.swarmMisses} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one snapshot, every family.
func (c *proxyCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.snapshot()
	ch <- prometheus.MustNewConstMetric(c.cacheBytes, prometheus.GaugeValue, float64(m.status.CacheBytes))
	for _, method := range []string{portmap.NATPMP, portmap.UPnP} {
		v := 0.0
		if pm := m.status.PortMapping; pm != nil && pm.Method == method {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.portMapped, prometheus.GaugeValue, v, method)
	}
	if l := m.status.Links; l != nil {
		for _, t := range []string{peerlink.TypeHost, peerlink.TypeSrflx, peerlink.TypePrflx, peerlink.TypeRelay} {
			ch <- prometheus.MustNewConstMetric(c.links, prometheus.GaugeValue, float64(l.PeersUp[t]), t)
			ch <- prometheus.MustNewConstMetric(c.linkBytes, prometheus.CounterValue, float64(l.BytesSent[t]), t, "sent")
			ch <- prometheus.MustNewConstMetric(c.linkBytes, prometheus.CounterValue, float64(l.BytesReceived[t]), t, "received")
		}
		ch <- prometheus.MustNewConstMetric(c.linkResults, prometheus.CounterValue, float64(l.Connected), "connected")
		ch <- prometheus.MustNewConstMetric(c.linkResults, prometheus.CounterValue, float64(l.Failed), "failed")
		ch <- prometheus.MustNewConstMetric(c.linkResults, prometheus.CounterValue, float64(l.Refused), "refused")
	}
	for name, st := range m.status.Channels {
		counter := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		counter(c.bytes, st.BytesFromGateway, "gateway")
		counter(c.bytes, st.BytesFromPeers, "peers")
		counter(c.bytes, st.BytesUploaded, "uploaded")
		counter(c.segments, st.CacheHits, "cache")
		counter(c.segments, st.SegmentsFromPeers, "peers")
		counter(c.segments, st.SegmentsFromGateway, "gateway")
		counter(c.integrityFailures, st.IntegrityFailures)
		counter(c.neighbourFailures, st.NeighbourFailures)
		counter(c.stalls, st.Stalls)
		for _, cause := range missCauseNames {
			counter(c.swarmMisses, st.SwarmMisses[cause], cause)
		}
		// Neighbour state is kept across channels; a proxy plays one channel as a rule.
		ch <- prometheus.MustNewConstMetric(c.neighbours, prometheus.GaugeValue, float64(m.neighbours), name)
	}
}
