package gateway

import (
	"net/http"

	"github.com/rawflow/rawflow/internal/metrics"
	"github.com/rawflow/rawflow/swarm"
)

// The gateway's Prometheus metrics (GET /metrics). Most are read at scrape time from what
// the gateway counts anyway; the swarm's come from the registry's totals as last sampled
// (every StatsFlushInterval), and are fleet-wide: every gateway of a fleet exports the same
// figures (aggregate them with max, not sum). Labels are configured channel names and
// fixed kinds only, so every label set is bounded. deploy/grafana/rawflow.json charts them.

// newMetrics registers the gateway's metrics.
func (s *Server) newMetrics() *metrics.Registry {
	r := metrics.NewRegistry()
	s.requests = r.Counter("rawflow_gateway_requests_total", "Requests served, by kind: playlist, segment, tracker.", "channel", "kind")
	each := func(f func(emit func(float64, ...string), name string, ch *channel)) func(emit func(float64, ...string)) {
		return func(emit func(float64, ...string)) {
			for name, ch := range s.channelMap() {
				f(emit, name, ch)
			}
		}
	}
	r.CounterFunc("rawflow_gateway_egress_bytes_total", "Bytes of segments the gateway served.", []string{"channel"},
		each(func(emit func(float64, ...string), name string, ch *channel) { emit(float64(ch.egress.Load()), name) }))
	r.CounterFunc("rawflow_gateway_segments_listed_total", "Segments the gateway listed.", []string{"channel"},
		each(func(emit func(float64, ...string), name string, ch *channel) {
			for _, rd := range ch.list() {
				emit(float64(rd.win.appended()), name)
			}
		}))
	r.GaugeFunc("rawflow_gateway_window_segments", "Segments held in RAM (listed and retired).", []string{"channel"},
		each(func(emit func(float64, ...string), name string, ch *channel) {
			for _, rd := range ch.list() {
				n, _ := rd.win.held()
				emit(float64(n), name)
			}
		}))
	r.GaugeFunc("rawflow_gateway_window_bytes", "Bytes of segments held in RAM.", []string{"channel"},
		each(func(emit func(float64, ...string), name string, ch *channel) {
			for _, rd := range ch.list() {
				_, b := rd.win.held()
				emit(float64(b), name)
			}
		}))
	r.GaugeFunc("rawflow_gateway_viewers", "Viewers: assisted (proxies registered, fleet-wide), direct (players of this gateway, last 30 s).",
		[]string{"channel", "kind"}, each(func(emit func(float64, ...string), name string, ch *channel) {
			emit(float64(ch.stats().ActivePeers), name, "assisted")
			emit(float64(ch.direct.count(s.cfg.Now())), name, "direct")
		}))
	r.CounterFunc("rawflow_swarm_bytes_total", "Bytes proxies reported, by source: gateway, peers, uploaded (fleet-wide).",
		[]string{"channel", "source"}, each(func(emit func(float64, ...string), name string, ch *channel) {
			st := ch.stats()
			emit(float64(st.BytesFromGateway), name, "gateway")
			emit(float64(st.BytesFromPeers), name, "peers")
			emit(float64(st.BytesUploaded), name, "uploaded")
		}))
	r.GaugeFunc("rawflow_swarm_offload_ratio", "Share of player bytes peers carried over the last minute.", []string{"channel"},
		each(func(emit func(float64, ...string), name string, ch *channel) { emit(ch.offload.Load().(float64), name) }))
	counter := func(metric, help string, get func(swarm.ChannelStats) int64) {
		r.CounterFunc(metric, help, []string{"channel"}, each(func(emit func(float64, ...string), name string, ch *channel) {
			emit(float64(get(ch.stats())), name)
		}))
	}
	counter("rawflow_swarm_stalls_total", "Player stalls proxies reported (fleet-wide).", func(st swarm.ChannelStats) int64 { return st.Stalls })
	counter("rawflow_swarm_integrity_failures_total", "Segments from peers that failed verification (fleet-wide).",
		func(st swarm.ChannelStats) int64 { return st.IntegrityFailures })
	counter("rawflow_swarm_peers_banned_total", "Peers banned by the trackers (fleet-wide).", func(st swarm.ChannelStats) int64 { return st.PeersBanned })
	r.CounterFunc("rawflow_ingest_source_errors_total", "Failed origin polls or source connections.", []string{"channel"},
		each(func(emit func(float64, ...string), name string, ch *channel) {
			emit(float64(ch.sourceErrors.Load()), name)
		}))
	return r
}

// count counts a request of a configured channel (others are not labels: unbounded).
func (s *Server) count(channel, kind string) {
	if s.channelMap()[channel] != nil {
		s.requests.With(channel, kind).Inc()
	}
}

// MetricsHandler serves GET /metrics.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }
