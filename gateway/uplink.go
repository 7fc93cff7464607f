package gateway

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/rawflow/rawflow/internal/tcpinfo"
)

// Estimating the uplink, when EgressLimit is not given. Pacing (pace.go) needs the
// uplink's rate; an operator seldom knows it, and a fleet's edges each have their own. So
// the gateway watches its segment transfers' TCP connections (tcpinfo: bytes acknowledged,
// bytes queued), every uplinkSample: the bytes its peers acknowledged per second are what
// the uplink delivered; when several connections at once hold more than queuedFor of that
// in their queues (and more than minQueuedTotal), for saturatedSamples in a row, the uplink
// is the bottleneck, and what it
// delivered (the best of the last uplinkWindow) is its rate. Segments are then paced a
// little below it (drainGain: the queues drain, so playlists, events and roots' bytes stop
// waiting behind copies), roots first, and the hold-back (held.go) counts against it. A
// rate that holds transfers back while nothing queues is raised by probeGain every
// probeEvery, until the queues build again (the uplink has more than was seen, or the
// audience left); after idleFor with neither, pacing stops.
//
// On loopback, or a link faster than what is asked of it, queues do not build and
// nothing is paced.
const (
	uplinkSample = 100 * time.Millisecond
	uplinkWindow = 20 // samples: 2 s
	queuedFor    = 250 * time.Millisecond
	// A saturated uplink: minBacklogged connections or more each hold minQueued bytes or
	// more, minQueuedTotal and queuedFor's worth of the delivered rate in all.
	minQueued      = 16 << 10
	minQueuedTotal = 128 << 10
	minBacklogged  = 2
	// unsentLimit bounds the bytes a segment transfer's socket takes and has not sent
	// (tcpinfo.LimitUnsent): Linux lets a socket buffer megabytes, which a saturated
	// uplink takes seconds to send, and which are thrown away with a transfer given up.
	unsentLimit      = 128 << 10
	saturatedSamples = 3
	drainGain        = 0.85
	probeGain        = 1.05
	probeEvery       = 10 * time.Second
	idleFor          = 30 * time.Second
)

// uplinkEstimator paces p and sets h's limit from the segment transfers' connections.
type uplinkEstimator struct {
	p   *pacer
	h   *holdBack
	log *slog.Logger

	mu        sync.Mutex // guards the following fields
	conns     map[net.Conn]*tracked
	rates     [uplinkWindow]float64 // bytes per second delivered, per sample (a ring)
	next      int                   // the ring's next slot
	last      time.Time             // the last sample's time
	satRun    int                   // samples saturated in a row
	lastSat   time.Time             // when the uplink was last seen saturated
	lastProbe time.Time             // when the rate was last raised, or set
}

// tracked is a connection carrying segment transfers.
type tracked struct {
	refs  int    // transfers under way on it
	acked uint64 // its acknowledged bytes at the last sample
	seen  bool   // acked read once
}

func newUplinkEstimator(p *pacer, h *holdBack, log *slog.Logger) *uplinkEstimator {
	return &uplinkEstimator{p: p, h: h, log: log, conns: map[net.Conn]*tracked{}}
}

// track counts c as carrying a segment transfer until the returned func is called. A
// connection seen for the first time gets its unsent limit, and its acknowledged bytes
// so far (a transfer that ends before the next sample counts too): two system calls,
// made outside the lock.
func (u *uplinkEstimator) track(c net.Conn) func() {
	u.mu.Lock()
	t := u.conns[c]
	if t == nil {
		u.mu.Unlock()
		tcpinfo.LimitUnsent(c, unsentLimit)
		st, ok := tcpinfo.Read(c)
		u.mu.Lock()
		if t = u.conns[c]; t == nil {
			t = &tracked{acked: st.Acked, seen: ok}
			u.conns[c] = t
		}
	}
	t.refs++
	u.mu.Unlock()
	return func() {
		u.mu.Lock()
		t.refs-- // sampled until its socket has delivered what it took, then forgotten
		u.mu.Unlock()
	}
}

// run samples the connections every uplinkSample until ctx ends.
func (u *uplinkEstimator) run(ctx context.Context) {
	tick := time.NewTicker(uplinkSample)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			u.sample(now)
		}
	}
}

// sample reads every tracked connection and steps the estimate.
func (u *uplinkEstimator) sample(now time.Time) {
	u.mu.Lock()
	conns := make([]net.Conn, 0, len(u.conns))
	for c := range u.conns {
		conns = append(conns, c)
	}
	u.mu.Unlock()
	type reading struct {
		s  tcpinfo.Sender
		ok bool
	}
	read := make([]reading, len(conns)) // without the lock: segment requests track meanwhile
	for i, c := range conns {
		read[i].s, read[i].ok = tcpinfo.Read(c)
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	var acked, queued uint64
	backlogged := 0
	for i, c := range conns {
		t, s, ok := u.conns[c], read[i].s, read[i].ok
		if t == nil {
			continue
		}
		if !ok || t.refs <= 0 && s.Queued == 0 { // closed, or its transfers done and delivered
			delete(u.conns, c)
		}
		if !ok {
			continue
		}
		if t.seen && s.Acked >= t.acked {
			acked += s.Acked - t.acked
		}
		t.acked, t.seen = s.Acked, true
		queued += s.Queued
		if s.Queued >= minQueued {
			backlogged++
		}
	}
	if u.last.IsZero() || now.Sub(u.last) <= 0 {
		u.last = now
		return
	}
	delivered := float64(acked) / now.Sub(u.last).Seconds()
	u.last = now
	u.step(now, delivered, float64(queued), backlogged)
}

// step takes one sample: delivered bytes per second, the bytes queued on all tracked
// connections, and how many of them hold minQueued or more (u.mu held).
func (u *uplinkEstimator) step(now time.Time, delivered, queued float64, backlogged int) {
	u.rates[u.next] = delivered
	u.next = (u.next + 1) % uplinkWindow
	if backlogged >= minBacklogged && queued >= max(minQueuedTotal, delivered*queuedFor.Seconds()) {
		u.satRun++
	} else {
		u.satRun = 0
	}
	rate, waited := u.p.state()
	switch {
	case u.satRun >= saturatedSamples:
		best := 0.0
		for _, r := range u.rates {
			best = max(best, r)
		}
		if best <= 0 {
			return
		}
		if rate == 0 {
			u.log.Info("uplink saturated: pacing segments below the rate it delivers", "delivered_bytes_per_s", int64(best))
		}
		u.lastSat, u.lastProbe = now, now
		u.p.setRate(drainGain * best)
		u.h.limit.Store(int64(best))
	case rate > 0 && now.Sub(u.lastSat) >= idleFor && now.Sub(waited) >= idleFor:
		u.log.Info("uplink no longer saturated: segments not paced")
		u.p.setRate(0)
		u.h.limit.Store(0)
	case rate > 0 && u.satRun == 0 && now.Sub(waited) < probeEvery && now.Sub(u.lastProbe) >= probeEvery:
		u.lastProbe = now
		u.p.setRate(probeGain * rate)
		u.h.limit.Store(int64(probeGain * rate / drainGain))
	}
}
