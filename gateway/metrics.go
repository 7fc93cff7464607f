package gateway

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rawflow/rawflow/gateway/tracker"
	"github.com/rawflow/rawflow/swarm"
)

// The gateway's Prometheus metrics (GET /metrics). All but the request counter are read at
// scrape time, from one snapshot (metricsSnapshot) of what the gateway counts anyway; the
// swarm's come from the registry's totals as last sampled (every StatsFlushInterval), and
// are fleet-wide: every gateway of a fleet exports the same figures (aggregate them with
// max, not sum). Labels are configured channel names and fixed kinds only, so every label
// set is bounded. deploy/grafana/rawflow.json charts them.

// channelMetrics is one channel's figures at one instant, as a scrape exports them.
type channelMetrics struct {
	name         string
	egressBytes  int64 // segment bytes served
	sourceErrors int64
	// discovered: the renditions are known; until then the window families have no series.
	discovered     bool
	segmentsListed uint64 // the following three sum the renditions
	windowSegments int
	windowBytes    int64
	directViewers  int                // players of this gateway, last 30 s
	swarm          swarm.ChannelStats // the registry's, as last sampled
	offload        float64            // the last minute's
}

// metricsSnapshot reads every channel's figures once; the collector uses nothing else.
func (s *Server) metricsSnapshot() []channelMetrics {
	now := s.cfg.Now()
	var out []channelMetrics
	for name, ch := range s.channelMap() {
		m := channelMetrics{name: name, egressBytes: ch.egress.Load(), sourceErrors: ch.sourceErrors.Load(),
			directViewers: ch.direct.count(now), swarm: ch.stats(), offload: ch.offload.Load().(float64)}
		for _, r := range ch.list() {
			m.discovered = true
			m.segmentsListed += r.win.appended()
			n, b := r.win.held()
			m.windowSegments += n
			m.windowBytes += b
		}
		out = append(out, m)
	}
	return out
}

// newMetrics makes the gateway's registry (its own families, Go runtime and process) and
// returns the handler of GET /metrics.
func (s *Server) newMetrics() http.Handler {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rawflow_gateway_requests_total",
		Help: "Requests served, by kind: playlist, segment, tracker, held (a member's segment fetch held back while the uplink is saturated)."}, []string{"channel", "kind"})
	s.fetches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rawflow_gateway_segment_fetches_total",
		Help: "Segment requests served, by what the requester said it was (RawFlow-Fetch): root (its cell's one copy, which the swarm spreads), member (its swarm did not deliver in time), other (a player, or a proxy with no plan yet)."}, []string{"channel", "fetch"})
	for name := range s.channelMap() { // at 0 from the start: a rate() sees the first fetch
		for _, f := range []string{swarm.FetchRoot, swarm.FetchMember, "other"} {
			s.fetches.WithLabelValues(name, f)
		}
	}
	pace := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rawflow_gateway_pace_rate_bytes",
		Help: "Bytes per second segments are paced at: 85 % of --egress-limit, or below the uplink's estimate while it is saturated; 0: not paced."},
		func() float64 { rate, _ := s.pacer.state(); return rate })
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.requests, s.fetches, pace, newGatewayCollector(s.metricsSnapshot), newTrackerCollector(s.tracker.Snapshot),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError, // a failing collector leaves the others served
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store") // never a cached scrape
		h.ServeHTTP(w, r)
	})
}

// count counts a request of a configured channel by kind.
func (s *Server) count(channel, kind string) { s.countIn(s.requests, channel, kind) }

// countFetch counts a segment request of a configured channel by its RawFlow-Fetch header.
func (s *Server) countFetch(channel, fetch string) {
	if fetch != swarm.FetchRoot && fetch != swarm.FetchMember {
		fetch = "other"
	}
	s.countIn(s.fetches, channel, fetch)
}

// countIn counts one in v's series for a configured channel (others are not labels:
// unbounded) and label.
func (s *Server) countIn(v *prometheus.CounterVec, channel, label string) {
	if s.channelMap()[channel] != nil {
		v.WithLabelValues(channel, label).Inc()
	}
}

// gatewayCollector exports the families read at scrape time, all from one snapshot.
type gatewayCollector struct {
	snapshot func() []channelMetrics

	egress, listed, windowSegments, windowBytes, viewers, swarmBytes, offload,
	stalls, integrityFailures, peersBanned, sourceErrors *prometheus.Desc
}

func newGatewayCollector(snapshot func() []channelMetrics) *gatewayCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"channel"}, labels...), nil)
	}
	return &gatewayCollector{
		snapshot:       snapshot,
		egress:         desc("rawflow_gateway_egress_bytes_total", "Bytes of segments the gateway served."),
		listed:         desc("rawflow_gateway_segments_listed_total", "Segments the gateway listed."),
		windowSegments: desc("rawflow_gateway_window_segments", "Segments held in RAM (listed and retired)."),
		windowBytes:    desc("rawflow_gateway_window_bytes", "Bytes of segments held in RAM."),
		viewers: desc("rawflow_gateway_viewers",
			"Viewers: assisted (proxies registered, fleet-wide), direct (players of this gateway, last 30 s).", "kind"),
		swarmBytes: desc("rawflow_swarm_bytes_total",
			"Bytes proxies reported, by source: gateway, peers, uploaded (fleet-wide).", "source"),
		offload:           desc("rawflow_swarm_offload_ratio", "Share of player bytes peers carried over the last minute."),
		stalls:            desc("rawflow_swarm_stalls_total", "Player stalls proxies reported (fleet-wide)."),
		integrityFailures: desc("rawflow_swarm_integrity_failures_total", "Segments from peers that failed verification (fleet-wide)."),
		peersBanned:       desc("rawflow_swarm_peers_banned_total", "Peers banned by the trackers (fleet-wide)."),
		sourceErrors:      desc("rawflow_ingest_source_errors_total", "Failed origin polls or source connections."),
	}
}

// Describe implements prometheus.Collector.
func (c *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.egress, c.listed, c.windowSegments, c.windowBytes, c.viewers,
		c.swarmBytes, c.offload, c.stalls, c.integrityFailures, c.peersBanned, c.sourceErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one snapshot, every family.
func (c *gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.snapshot() {
		counter := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{m.name}, labels...)...)
		}
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{m.name}, labels...)...)
		}
		counter(c.egress, float64(m.egressBytes))
		if m.discovered {
			counter(c.listed, float64(m.segmentsListed))
			gauge(c.windowSegments, float64(m.windowSegments))
			gauge(c.windowBytes, float64(m.windowBytes))
		}
		gauge(c.viewers, float64(m.swarm.ActivePeers), "assisted")
		gauge(c.viewers, float64(m.directViewers), "direct")
		counter(c.swarmBytes, float64(m.swarm.BytesFromGateway), "gateway")
		counter(c.swarmBytes, float64(m.swarm.BytesFromPeers), "peers")
		counter(c.swarmBytes, float64(m.swarm.BytesUploaded), "uploaded")
		gauge(c.offload, m.offload)
		counter(c.stalls, float64(m.swarm.Stalls))
		counter(c.integrityFailures, float64(m.swarm.IntegrityFailures))
		counter(c.peersBanned, float64(m.swarm.PeersBanned))
		counter(c.sourceErrors, float64(m.sourceErrors))
	}
}

// trackerCollector exports the tracker's own counters (see tracker.Snapshot), from one
// snapshot per scrape: what it refused and why, its open streams, the segment events it
// dropped for streams that did not keep up.
type trackerCollector struct {
	snapshot                                                   func() tracker.Stats
	refused, streams, opened, plans, dropped, clamped, signals *prometheus.Desc
}

func newTrackerCollector(snapshot func() tracker.Stats) *trackerCollector {
	return &trackerCollector{snapshot: snapshot,
		refused: prometheus.NewDesc("rawflow_gateway_tracker_refused_total",
			"Tracker calls refused (429), by reason: joins (new proxies from one address), peer (calls of one proxy), address (all calls of one address), identities (proxies one address holds at once).",
			[]string{"reason"}, nil),
		streams: prometheus.NewDesc("rawflow_gateway_event_streams", "Proxies' event streams this gateway serves.", nil, nil),
		opened: prometheus.NewDesc("rawflow_gateway_event_streams_opened_total",
			"Event streams opened: proxies joining, and reconnecting (a stream that broke, a proxy whose subscription changed).", nil, nil),
		plans: prometheus.NewDesc("rawflow_gateway_plans_sent_total",
			"Distribution plans sent to proxies: each member's first, and each that changed (a cell's membership changed). Each change can make proxies open connections to new neighbours.", nil, nil),
		dropped: prometheus.NewDesc("rawflow_gateway_segment_events_dropped_total",
			"Segment events not sent to a stream that did not keep up (its proxy reads the playlist instead).", nil, nil),
		clamped: prometheus.NewDesc("rawflow_gateway_tracker_reports_clamped_total",
			"Proxy reports cut to what the proxy could have played or uploaded since its last report.", nil, nil),
		signals: prometheus.NewDesc("rawflow_gateway_tracker_signals_total",
			"WebRTC signals (offers and answers) proxies sent, by result: relayed, unpaired (no plan pairs the two, or no offer to answer), elsewhere (the recipient has no stream on this gateway, and no fleet to pass it to), full (its queue was full), forwarded (passed to the fleet's other gateways).",
			[]string{"result"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *trackerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.refused
	ch <- c.streams
	ch <- c.opened
	ch <- c.plans
	ch <- c.dropped
	ch <- c.clamped
	ch <- c.signals
}

// Collect implements prometheus.Collector.
func (c *trackerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.snapshot()
	for r, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), tracker.Reason(r).String())
	}
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(st.Streams))
	ch <- prometheus.MustNewConstMetric(c.opened, prometheus.CounterValue, float64(st.Opened))
	ch <- prometheus.MustNewConstMetric(c.plans, prometheus.CounterValue, float64(st.Plans))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped))
	ch <- prometheus.MustNewConstMetric(c.clamped, prometheus.CounterValue, float64(st.Clamped))
	for r, n := range st.Signals {
		ch <- prometheus.MustNewConstMetric(c.signals, prometheus.CounterValue, float64(n), tracker.SignalResult(r).String())
	}
}
