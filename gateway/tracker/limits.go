package tracker

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Admission limits. A whole office, campus or carrier-grade NAT shares one address, so
// calls are limited per peer identity (the ID its token proves), and only joins — new
// identities, which cost a caller nothing else — and a high ceiling of all calls are
// limited per address. Every refusal is counted by reason.

// Reason says why the tracker refused a call.
type Reason int

// Reasons for a refusal (429).
const (
	RefusedJoins      Reason = iota // too many new peers from one address
	RefusedPeer                     // too many calls from one peer
	RefusedAddress                  // too many calls from one address, all peers together
	RefusedIdentities               // too many peer identities (open streams) from one address
	numReasons
)

// String names the reason as metrics label it.
func (r Reason) String() string {
	return [...]string{"joins", "peer", "address", "identities"}[r]
}

// maxBuckets bounds the token buckets one limiter keeps; past it they are all forgotten at
// once (each key starts again with a full burst: the bound protects memory, not the rate).
// Addresses and identities cost an attacker little (an IPv6 /64 holds 2^64 addresses).
const maxBuckets = 65536

// limiter is a token bucket per key, at most maxBuckets of them.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: max(1, burst), now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes one token from key's bucket.
func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			clear(l.buckets)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	return b.AllowN(l.now(), 1)
}

// limits are the tracker's admission limits and their refusal counts.
type limits struct {
	joins, peers, addresses *limiter
	refused                 [numReasons]atomic.Int64
}

// admit takes a call from addr — as peer id, or as a new peer when id is "" — and
// returns false with the reason when a limit refuses it (and counts it).
func (l *limits) admit(addr, id string) (Reason, bool) {
	r := RefusedAddress
	ok := l.addresses.allow(addr)
	switch {
	case !ok:
	case id == "":
		r, ok = RefusedJoins, l.joins.allow(addr)
	default:
		r, ok = RefusedPeer, l.peers.allow(id)
	}
	if !ok {
		l.refused[r].Add(1)
	}
	return r, ok
}

// identities counts the open event streams of each client address by peer identity: one
// address may hold at most a ceiling of identities at once. Only open streams are kept, so
// it is bounded by the streams the gateway serves.
type identities struct {
	mu     sync.Mutex                // guards byAddr
	byAddr map[string]map[string]int // address -> peer ID -> its open streams
}

// open counts a stream of peer id from addr, unless addr holds ceiling other identities
// already; it reports whether the stream may open (then close must follow).
func (n *identities) open(addr, id string, ceiling int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr == nil {
		n.byAddr = map[string]map[string]int{}
	}
	ids := n.byAddr[addr]
	if ids[id] == 0 && len(ids) >= ceiling {
		return false
	}
	if ids == nil {
		ids = map[string]int{}
		n.byAddr[addr] = ids
	}
	ids[id]++
	return true
}

// close uncounts a stream that open admitted.
func (n *identities) close(addr, id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := n.byAddr[addr]
	if ids[id]--; ids[id] <= 0 {
		delete(ids, id)
	}
	if len(ids) == 0 {
		delete(n.byAddr, addr)
	}
}
