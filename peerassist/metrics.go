package peerassist

import (
	"net/http"
	"time"

	"github.com/rawflow/rawflow/internal/metrics"
)

// The proxy's Prometheus metrics (GET /metrics on the player port), read at scrape time
// from its own counters (Status), but for the startup histogram, observed as players start.
// Labels are the channels the proxy plays and fixed sources: bounded by MaxChannels.

// startupBuckets are the bounds of rawflow_peer_startup_seconds.
var startupBuckets = []float64{0.25, 0.5, 1, 2, 4, 8}

func (p *Proxy) newMetrics() {
	r := metrics.NewRegistry()
	p.startup = r.Histogram("rawflow_peer_startup_seconds", "Player startup: first playlist request to first segment delivered.", startupBuckets).With()
	each := func(f func(emit func(float64, ...string), name string, st ChannelStatus)) func(emit func(float64, ...string)) {
		return func(emit func(float64, ...string)) {
			for name, st := range p.Status().Channels {
				f(emit, name, st)
			}
		}
	}
	r.CounterFunc("rawflow_peer_bytes_total", "Segment bytes by source: gateway, peers (received), uploaded (sent to peers).",
		[]string{"channel", "source"}, each(func(emit func(float64, ...string), name string, st ChannelStatus) {
			emit(float64(st.BytesFromGateway), name, "gateway")
			emit(float64(st.BytesFromPeers), name, "peers")
			emit(float64(st.BytesUploaded), name, "uploaded")
		}))
	r.CounterFunc("rawflow_peer_segments_total", "Segments served to the player, by source: cache, peers, gateway.",
		[]string{"channel", "source"}, each(func(emit func(float64, ...string), name string, st ChannelStatus) {
			emit(float64(st.CacheHits), name, "cache")
			emit(float64(st.SegmentsFromPeers), name, "peers")
			emit(float64(st.SegmentsFromGateway), name, "gateway")
		}))
	counter := func(metric, help string, get func(ChannelStatus) int64) {
		r.CounterFunc(metric, help, []string{"channel"}, each(func(emit func(float64, ...string), name string, st ChannelStatus) {
			emit(float64(get(st)), name)
		}))
	}
	counter("rawflow_peer_integrity_failures_total", "Segments from neighbours that failed verification.", func(st ChannelStatus) int64 { return st.IntegrityFailures })
	counter("rawflow_peer_neighbour_failures_total", "Failed neighbour transfers.", func(st ChannelStatus) int64 { return st.NeighbourFailures })
	counter("rawflow_peer_stalls_total", "Player stalls seen from its requests.", func(st ChannelStatus) int64 { return st.Stalls })
	r.GaugeFunc("rawflow_peer_cache_bytes", "Bytes in the segment cache.", nil, func(emit func(float64, ...string)) {
		b, _ := p.cache.size()
		emit(float64(b))
	})
	// Neighbour state is kept across channels; a proxy plays one channel as a rule.
	r.GaugeFunc("rawflow_peer_neighbours", "Neighbours the proxy knows (across its channels).", []string{"channel"},
		each(func(emit func(float64, ...string), name string, _ ChannelStatus) {
			emit(float64(p.neigh.count()), name)
		}))
	p.metrics = r
}

// observeStartup records a player's startup in the histogram.
func (p *Proxy) observeStartup(d time.Duration) {
	if p.startup != nil {
		p.startup.Observe(d.Seconds())
	}
}

// MetricsHandler serves GET /metrics.
func (p *Proxy) MetricsHandler() http.Handler { return p.metrics.Handler() }
