package peerassist

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rawflow/rawflow/peerlink"
	"github.com/rawflow/rawflow/swarm"
)

// counters are one channel's delivery counters, owned by the proxy and read through
// snapshot. A failing neighbour is counted here, not logged per request.
type counters struct {
	// The byte and segment counters are added to only through got, which splits them too.
	bytesFromGateway    atomic.Int64
	bytesFromPeers      atomic.Int64
	segmentsFromGateway atomic.Int64
	segmentsFromPeers   atomic.Int64
	bytesUploaded       atomic.Int64
	integrityFailures   atomic.Int64
	neighbourFailures   atomic.Int64
	cacheHits           atomic.Int64
	// What the players experienced (qoe.go).
	stalls        atomic.Int64
	startups      atomic.Int64
	startupMillis atomic.Int64
	// Scheduling counters, shown in Status, not reported to the gateway.
	trackerRequests  atomic.Int64 // event streams opened and reports sent
	trackerRefused   atomic.Int64 // of which the gateway refused for their rate (429)
	roots            atomic.Int64 // segments this proxy fetched from the gateway as its stripe's root
	rangeCompletions atomic.Int64 // partial neighbour transfers completed from the gateway
	gatewayResumes   atomic.Int64 // gateway transfers cut short and resumed with Range
	held             atomic.Int64 // fetches the gateway held back (errHeld): the swarm delivered or the gateway did later
	// misses counts a member's swarm rungs that missed (the segment then came from the
	// gateway), by the outcome of the last source tried.
	misses [numMissCauses]atomic.Int64

	split breakdown
}

// missCause is why a member's swarm rung missed: what the last source tried did.
type missCause int

// Causes of a swarm miss (ChannelStatus.SwarmMisses).
const (
	missResting missCause = iota // every source was being skipped (resting, or after a failure)
	missPending                  // its path or WebRTC link was not known or up yet
	missBusy                     // it did not hold the segment, or had no upload slot (404, 503)
	missLate                     // it was getting the segment itself (103) and did not finish in time
	missFailed                   // no answer within the stall bound, a failed transfer, or bad bytes
	missTime                     // the rung's time ran out before a source was tried
	numMissCauses
)

var missCauseNames = [numMissCauses]string{"resting", "pending", "busy", "late", "failed", "time"}

// missCounts returns the misses by cause name (only causes that occurred).
func (c *counters) missCounts() map[string]int64 {
	var out map[string]int64
	for i := range c.misses {
		if n := c.misses[i].Load(); n > 0 {
			if out == nil {
				out = map[string]int64{}
			}
			out[missCauseNames[i]] = n
		}
	}
	return out
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
		Stalls:              c.stalls.Load(),
		Startups:            c.startups.Load(),
		StartupMillis:       c.startupMillis.Load(),
	}
}

// delivery is one segment (or object passed through) that reached the proxy, and who sent
// its bytes.
type delivery struct {
	rendition string // as in the request path: "" for a channel's only media playlist
	gateway   int64  // bytes from the gateway
	peers     int64  // bytes from a neighbour
	group     string // that neighbour's group ("" for none)
	path      string // how its bytes travelled (swarm.PeerPaths)
}

// got counts a delivery. A segment the gateway had a hand in (completing a partial
// neighbour transfer) is the gateway's. The additions hold the breakdown's lock, so that
// what an announce reports (pending) splits exactly the deliveries its totals count.
func (c *counters) got(d delivery) {
	var add swarm.Counters
	add.BytesFromGateway, add.BytesFromPeers = d.gateway, d.peers
	if d.peers > 0 && d.gateway == 0 {
		add.SegmentsFromPeers = 1
	} else {
		add.SegmentsFromGateway = 1
	}
	b := &c.split
	b.mu.Lock()
	defer b.mu.Unlock()
	c.bytesFromGateway.Add(add.BytesFromGateway)
	c.bytesFromPeers.Add(add.BytesFromPeers)
	c.segmentsFromGateway.Add(add.SegmentsFromGateway)
	c.segmentsFromPeers.Add(add.SegmentsFromPeers)
	b.addRendition(d.rendition, add)
	if d.peers > 0 {
		b.addFedBy(d.group, d.peers)
		if swarm.ValidPeerPath(d.path) {
			if b.paths == nil {
				b.paths = map[string]int64{}
			}
			b.paths[d.path] += d.peers
		}
	}
}

// pending returns the counters' totals and the breakdowns not yet accepted, bounded as an
// announce must be (see breakdown).
func (c *counters) pending() (totals swarm.Counters, renditions map[string]swarm.Counters, fedBy, paths map[string]int64) {
	b := &c.split
	b.mu.Lock()
	defer b.mu.Unlock()
	return c.snapshot(), b.renditionsToReport(), maps.Clone(b.fedBy), maps.Clone(b.paths)
}

// accepted removes what an accepted announce carried from the pending breakdowns.
func (c *counters) accepted(renditions map[string]swarm.Counters, fedBy, paths map[string]int64) {
	b := &c.split
	b.mu.Lock()
	defer b.mu.Unlock()
	for r, sent := range renditions {
		if e := b.renditions[r]; e != nil {
			e.Sub(sent)
			if e.IsZero() {
				delete(b.renditions, r)
			}
		}
	}
	for _, m := range []struct{ pending, sent map[string]int64 }{{b.fedBy, fedBy}, {b.paths, paths}} {
		for k, sent := range m.sent {
			if n, ok := m.pending[k]; ok && n > sent {
				m.pending[k] = n - sent
			} else {
				delete(m.pending, k)
			}
		}
	}
}

// breakdown holds the deltas of the byte and segment counters not yet accepted by the
// gateway, by rendition, and of the peer bytes, by the group of the neighbour that sent
// them. Unlike the totals (member.reported) they are kept as pending deltas, not as totals
// less what was accepted: an accepted announce subtracts what it carried, so the maps hold
// only the current period's entries and stay small. Both are breakdowns: what does not fit
// their bounds is left out of them, never out of the totals.
//   - renditions: at most maxRenditions pending; an announce carries the
//     swarm.MaxReportRenditions that have been pending longest, the others go with the next.
//   - fedBy: the first swarm.MaxFedBy groups seen since the last accepted announce; bytes
//     from other groups, or from a group name the gateway would refuse, are left out.
type breakdown struct {
	mu         sync.Mutex // guards the following fields, and orders additions to the totals
	renditions map[string]*pendingRendition
	fedBy      map[string]int64
	paths      map[string]int64 // peer bytes by how they travelled (swarm.PeerPaths: bounded)
	arrivals   uint64           // entries added to renditions so far
}

type pendingRendition struct {
	swarm.Counters
	since uint64 // its arrival: the longest pending go first
}

func (b *breakdown) addRendition(r string, add swarm.Counters) {
	e := b.renditions[r]
	if e == nil {
		if len(b.renditions) >= maxRenditions {
			return
		}
		if b.renditions == nil {
			b.renditions = map[string]*pendingRendition{}
		}
		b.arrivals++
		e = &pendingRendition{since: b.arrivals}
		b.renditions[r] = e
	}
	e.Add(add)
}

// addFedBy adds n bytes from a neighbour of group. A group comes from the tracker's lookup
// answer; one the gateway would refuse must not reach an announce, or every delta would
// stay pending for good.
func (b *breakdown) addFedBy(group string, n int64) {
	if _, ok := b.fedBy[group]; !ok && (len(b.fedBy) >= swarm.MaxFedBy || !swarm.ValidGroup(group)) {
		return
	}
	if b.fedBy == nil {
		b.fedBy = map[string]int64{}
	}
	b.fedBy[group] += n
}

// renditionsToReport returns the pending renditions one announce carries (b.mu held).
func (b *breakdown) renditionsToReport() map[string]swarm.Counters {
	names := make([]string, 0, len(b.renditions))
	for r := range b.renditions {
		names = append(names, r)
	}
	slices.SortFunc(names, func(x, y string) int { return cmp.Compare(b.renditions[x].since, b.renditions[y].since) })
	if len(names) == 0 {
		return nil
	}
	out := map[string]swarm.Counters{}
	for _, r := range names[:min(len(names), swarm.MaxReportRenditions)] {
		out[r] = b.renditions[r].Counters
	}
	return out
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
	// Connections counts the connections the proxy opened, to the gateway and to its
	// neighbours: few, since each is kept and reused.
	Connections int64 `json:"connections"`
	// StalePlaylists counts the playlists served from the proxy's copy while the gateway
	// could not be reached; TokenRefused the segment requests refused on a signed channel
	// for want of a token the gateway accepted; AddrRefused the neighbour addresses the
	// gateway's address policy did not allow, never dialled.
	StalePlaylists int64 `json:"stale_playlists"`
	TokenRefused   int64 `json:"token_refused"`
	AddrRefused    int64 `json:"addr_refused"`
	// GatewayCertRefused counts the requests to an https:// gateway given up because its
	// certificate did not verify (Config.GatewayRoots): nothing is fetched from it then.
	GatewayCertRefused int64 `json:"gateway_cert_refused"`
	// NeighbourRefused counts the neighbour requests refused for want of a swarm credential
	// this proxy accepts (swarm/admission.go): programs the gateway did not admit.
	NeighbourRefused int64 `json:"neighbour_refused"`
	// Links are the WebRTC links to neighbours (links.go); nil with PeerTransport direct.
	Links *peerlink.Stats `json:"links,omitempty"`
	// PortMapping is the public address and port the router forwards to the neighbour
	// port, and how it was asked ("nat-pmp" or "upnp"); nil without one (Node).
	PortMapping *PortMapping `json:"port_mapping,omitempty"`
	// NAT is how the NAT in front of the proxy maps its flows, as tested with the gateway's
	// two STUN ports: "cone", "symmetric", or nothing (not tested, no answer, no WebRTC).
	NAT string `json:"nat,omitempty"`
}

// PortMapping is a router's forwarding of the neighbour port (Status.PortMapping).
type PortMapping struct {
	External string `json:"external"`
	Method   string `json:"method"`
}

// ChannelStatus is one channel's part of Status. Its counters include what the players
// experienced: Stalls, Startups and StartupMillis (qoe.go), as reported to the gateway.
type ChannelStatus struct {
	swarm.Counters
	CacheHits int64 `json:"cache_hits"`
	// TrackerRequests counts the event streams opened and the reports sent, TrackerRefused
	// those the gateway refused for their rate; Roots the segments this proxy fetched from
	// the gateway as its stripe's root; RangeCompletions the partial neighbour transfers the
	// gateway completed with a Range request; GatewayResumes the gateway transfers cut short
	// and resumed with Range; Held the fetches the gateway held back while its uplink was
	// saturated (the cell's root was getting the segment).
	TrackerRequests  int64 `json:"tracker_requests"`
	TrackerRefused   int64 `json:"tracker_refused"`
	Roots            int64 `json:"roots"`
	RangeCompletions int64 `json:"range_completions"`
	GatewayResumes   int64 `json:"gateway_resumes"`
	Held             int64 `json:"held"`
	// SwarmMisses counts the member fetches the swarm missed (then made from the gateway),
	// by what the last source tried did: resting (every source was being skipped), pending
	// (its path or link not known yet), busy (404 or 503), late (getting it itself, not done
	// in time), failed (no answer in time, a failed transfer, bad bytes), time (the rung's
	// time ran out first). Nil when there were none.
	SwarmMisses map[string]int64 `json:"swarm_misses,omitempty"`
	// PeerID is the ID the gateway issued; empty until the stream's hello.
	PeerID  string  `json:"peer_id"`
	Offload float64 `json:"offload"`
}
