package tracker

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Report bounds. Every delta a peer reports is bounded by what it could have played or
// uploaded since its last report, from what this gateway listed (Published: sizes and
// durations): each peer has credits that fill at the listing's rate for the renditions it
// plays (times meterSlack), up to one window of segments plus two report intervals, full
// at its first report. Deltas over them are clamped, not refused (a refused report would
// be sent again forever), and counted. In a fleet each gateway keeps its own credits.
const (
	meterSlack   = 1.25 // headroom over the listed rate
	uploadFactor = 8    // uploads per byte played: Fanout+Stripes-1 children, second sources
	failFactor   = 8    // neighbour and integrity failures per segment
	maxStartupMS = 120_000
	meterWindow  = 8       // latest segments per rendition that give its rate and window
	maxMeters    = 1 << 17 // peers with credits; past it, the idle are forgotten
	meterIdle    = 5 * time.Minute
	warnEvery    = time.Minute
)

// ring is a rendition's latest listed segments.
type ring struct {
	size, durMS [meterWindow]int64
	n, next     int
}

func (r *ring) add(size, durMS int64) {
	r.size[r.next], r.durMS[r.next] = max(size, 0), max(durMS, 1)
	r.next = (r.next + 1) % meterWindow
	r.n = min(r.n+1, meterWindow)
}

// rates returns the rendition's bytes and segments per second and one window of each.
func (r *ring) rates() (bytesPS, segsPS, winBytes, winSegs float64) {
	var size, dur int64
	for i := range r.n {
		size, dur = size+r.size[i], dur+r.durMS[i]
	}
	if r.n == 0 {
		return 0, 0, 0, 0
	}
	s := float64(dur) / 1000
	return float64(size) / s, float64(r.n) / s, float64(size), float64(r.n)
}

// credit is what one peer may still report.
type credit struct {
	at                   time.Time
	bytes, uploads, segs float64
	warned               time.Time
}

type meter struct {
	interval time.Duration
	clamped  atomic.Int64 // reports clamped

	mu      sync.Mutex // guards the following fields
	listed  map[streamID]*ring
	credits map[string]*credit // channel/peer id
}

// published records a listed segment.
func (m *meter) published(channel string, ev swarm.SegmentEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listed == nil {
		m.listed = map[streamID]*ring{}
	}
	sid := streamID{channel, ev.Rendition}
	r := m.listed[sid]
	if r == nil {
		r = &ring{}
		m.listed[sid] = r
	}
	r.add(ev.Size, ev.DurationMS)
}

// clamp bounds a report of peer id in channel, playing renditions (when none of them is
// listed, the channel's top rendition counts), at now; it returns the report as counted and whether
// it was cut, and warn when that deserves a log line (once per peer per warnEvery).
func (m *meter) clamp(channel, id string, renditions []string, req swarm.ReportRequest, now time.Time) (out swarm.ReportRequest, cut, warn bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bps, sps, wb, ws float64
	for _, name := range renditions {
		if r := m.listed[streamID{channel, name}]; r != nil {
			b, s, w, n := r.rates()
			bps, sps, wb, ws = bps+b, sps+s, wb+w, ws+n
		}
	}
	if bps == 0 { // renditions unknown, or none listed: the channel's top one
		for sid, r := range m.listed {
			if sid.channel == channel {
				b, s, w, n := r.rates()
				if b > bps {
					bps, sps, wb, ws = b, s, w, n
				}
			}
		}
	}
	carry := 2 * m.interval.Seconds()
	capBytes, capSegs := meterSlack*(wb+bps*carry), meterSlack*(ws+sps*carry)+2
	if m.credits == nil || len(m.credits) >= maxMeters {
		m.forget(now)
	}
	key := channel + "/" + id
	c := m.credits[key]
	if c == nil {
		c = &credit{at: now, bytes: capBytes, uploads: uploadFactor * capBytes, segs: capSegs}
		m.credits[key] = c
	}
	dt := max(now.Sub(c.at).Seconds(), 0)
	c.at = now
	c.bytes = min(c.bytes+meterSlack*bps*dt, capBytes)
	c.uploads = min(c.uploads+uploadFactor*meterSlack*bps*dt, uploadFactor*capBytes)
	c.segs = min(c.segs+meterSlack*sps*dt, capSegs)

	out = req
	st := &out.Stats
	before := *st
	play := float64(st.BytesFromGateway) + float64(st.BytesFromPeers)
	if play > c.bytes {
		k := c.bytes / play
		st.BytesFromGateway, st.BytesFromPeers = scale(st.BytesFromGateway, k), scale(st.BytesFromPeers, k)
	}
	c.bytes -= float64(st.BytesFromGateway + st.BytesFromPeers)
	st.BytesUploaded = min(st.BytesUploaded, int64(c.uploads))
	c.uploads -= float64(st.BytesUploaded)
	segs := float64(st.SegmentsFromGateway) + float64(st.SegmentsFromPeers)
	if segs > c.segs {
		k := c.segs / segs
		st.SegmentsFromGateway, st.SegmentsFromPeers = scale(st.SegmentsFromGateway, k), scale(st.SegmentsFromPeers, k)
	}
	allow := int64(c.segs)
	c.segs -= float64(st.SegmentsFromGateway + st.SegmentsFromPeers)
	st.Stalls, st.Startups = min(st.Stalls, allow), min(st.Startups, allow)
	st.StartupMillis = min(st.StartupMillis, st.Startups*maxStartupMS)
	st.IntegrityFailures = min(st.IntegrityFailures, failFactor*allow)
	st.NeighbourFailures = min(st.NeighbourFailures, failFactor*allow)
	cut = *st != before
	out.Renditions, out.FedBy = fitRenditions(req.Renditions, *st), fitFedBy(req.FedBy, st.BytesFromPeers)
	out.Paths = fitFedBy(req.Paths, st.BytesFromPeers)
	if cut {
		m.clamped.Add(1)
		if now.Sub(c.warned) >= warnEvery {
			c.warned, warn = now, true
		}
	}
	return out, cut, warn
}

// forget drops the credits of peers idle for meterIdle, or all of them when that is not
// enough (m.mu held).
func (m *meter) forget(now time.Time) {
	if m.credits == nil {
		m.credits = map[string]*credit{}
	}
	for k, c := range m.credits {
		if now.Sub(c.at) > meterIdle {
			delete(m.credits, k)
		}
	}
	if len(m.credits) >= maxMeters {
		clear(m.credits)
	}
}

func scale(v int64, k float64) int64 { return int64(math.Floor(float64(v) * k)) }

// fitRenditions cuts a report's rendition breakdown so that, counter by counter, it adds
// up to no more than the totals.
func fitRenditions(rs map[string]swarm.Counters, total swarm.Counters) map[string]swarm.Counters {
	if len(rs) == 0 {
		return rs
	}
	out := make(map[string]swarm.Counters, len(rs))
	for n, c := range rs {
		out[n] = c
	}
	var sum swarm.Counters
	for _, c := range rs {
		sum.Add(c)
	}
	sf, tf := fields(&sum), fields(&total)
	for i := range sf {
		if *sf[i] <= *tf[i] {
			continue
		}
		k := float64(*tf[i]) / float64(*sf[i])
		for n, c := range out {
			f := fields(&c)
			*f[i] = scale(*f[i], k)
			out[n] = c
		}
	}
	return out
}

// fitFedBy cuts a report's bytes by feeding group (or by path) to add up to no more than
// peers.
func fitFedBy(fed map[string]int64, peers int64) map[string]int64 {
	var sum float64
	for _, n := range fed {
		sum += float64(n)
	}
	if sum <= float64(peers) {
		return fed
	}
	out := make(map[string]int64, len(fed))
	for g, n := range fed {
		out[g] = scale(n, float64(peers)/sum)
	}
	return out
}

// fields lists c's counters in a fixed order.
func fields(c *swarm.Counters) []*int64 {
	return []*int64{&c.BytesFromGateway, &c.BytesFromPeers, &c.BytesUploaded, &c.SegmentsFromGateway,
		&c.SegmentsFromPeers, &c.IntegrityFailures, &c.NeighbourFailures, &c.GatewayEgressBytes, &c.Stalls,
		&c.Startups, &c.StartupMillis, &c.PeersBanned, &c.TrackerRefused}
}
