package peerassist

import (
	"sync/atomic"

	"github.com/rawflow/rawflow/swarm"
)

// counters are one channel's delivery counters, owned by the proxy and read through
// snapshot. A failing neighbour is counted here, not logged per request.
type counters struct {
	bytesFromGateway    atomic.Int64
	bytesFromPeers      atomic.Int64
	bytesUploaded       atomic.Int64
	segmentsFromGateway atomic.Int64
	segmentsFromPeers   atomic.Int64
	integrityFailures   atomic.Int64
	neighbourFailures   atomic.Int64
	cacheHits           atomic.Int64
	// Scheduling counters, shown in Status, not reported to the gateway.
	trackerRequests  atomic.Int64 // announce, have and lookup calls
	lookups          atomic.Int64 // of which lookups
	elected          atomic.Int64 // segments this proxy was elected to fetch from the gateway
	rangeCompletions atomic.Int64 // partial neighbour transfers completed from the gateway
}

func (c *counters) snapshot() swarm.Counters {
	return swarm.Counters{
		BytesFromGateway:    c.bytesFromGateway.Load(),
		BytesFromPeers:      c.bytesFromPeers.Load(),
		BytesUploaded:       c.bytesUploaded.Load(),
		SegmentsFromGateway: c.segmentsFromGateway.Load(),
		SegmentsFromPeers:   c.segmentsFromPeers.Load(),
		IntegrityFailures:   c.integrityFailures.Load(),
		NeighbourFailures:   c.neighbourFailures.Load(),
	}
}

// Status is GET /api/v1/status on the player port.
type Status struct {
	// Totals sums every channel.
	Totals   swarm.Counters           `json:"totals"`
	Channels map[string]ChannelStatus `json:"channels"`
	// CacheBytes and CacheSegments describe the segment cache.
	CacheBytes    int64 `json:"cache_bytes"`
	CacheSegments int   `json:"cache_segments"`
	// Advertising is false while the proxy does not offer uploads (a leech, or an uplink
	// that kept missing deadlines); QuietSpells counts the times its uplink went quiet.
	Advertising bool `json:"advertising"`
	QuietSpells int  `json:"quiet_spells"`
}

// ChannelStatus is one channel's part of Status.
type ChannelStatus struct {
	swarm.Counters
	CacheHits int64 `json:"cache_hits"`
	// TrackerRequests counts announce, have and lookup calls; Elected the segments this
	// proxy fetched from the gateway for the swarm; RangeCompletions the partial neighbour
	// transfers the gateway completed with a Range request.
	TrackerRequests  int64 `json:"tracker_requests"`
	Lookups          int64 `json:"lookups"`
	Elected          int64 `json:"elected"`
	RangeCompletions int64 `json:"range_completions"`
	// PeerID is the ID the gateway issued; empty until the first announce succeeds.
	PeerID  string  `json:"peer_id"`
	Offload float64 `json:"offload"`
}
