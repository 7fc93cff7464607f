package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Holding back copies while the uplink is saturated (issue 14's flash crowd). A cell
// (channel, rendition, locality group) needs one copy of each segment from the gateway: its
// stripe's root fetches it, every other member gets it through the stripe's tree. When a
// member's swarm does not deliver in time it asks the gateway too; on a saturated uplink
// every such extra copy slows the root's transfer and every other one, so that more members
// miss their deadline and ask the gateway in turn. So while the uplink is saturated — the
// gateway has BusyTransfers or more segment transfers under way, or (with EgressLimit) it
// started sending 90 % of that rate's worth of segment bytes in the last second — a
// member's fetch (swarm.FetchMember) of a segment
// its cell's root asked for within rootMemory is answered 503 with swarm.HeldHeader: the
// cell is getting it, wait for the swarm. Never refused: a root, a request that says
// nothing (a player, a leech with no plan, an older proxy), a range (the rest of a partial
// transfer), and a member with less than swarm.UrgentNeed left before its player needs the
// segment: the gateway stays the source of last resort.

// rootMemory is how long a root's fetch of a segment counts for its cell.
const rootMemory = 30 * time.Second

// maxRootFetches bounds the root fetches remembered; past it, those older than rootMemory
// are dropped, and if none is, all (a refusal only ever saves a copy).
const maxRootFetches = 16384

type cellSegment struct{ channel, rendition, group, name string }

// holdBack tracks the segment transfers under way, the bytes sent, and the cells' root
// fetches.
type holdBack struct {
	busy     int64        // transfers under way from which the uplink counts as saturated; ≤ 0: never
	limit    atomic.Int64 // the uplink's bytes per second (EgressLimit, or estimated: uplink.go); 0: unknown
	inflight atomic.Int64
	mu       sync.Mutex // guards the following fields
	roots    map[cellSegment]time.Time
	second   int64 // the Unix second of cur
	cur      int64 // bytes started in that second
	prev     int64 // and in the second before
}

func newHoldBack(busy int, limit int64) *holdBack {
	h := &holdBack{busy: int64(busy), roots: map[cellSegment]time.Time{}}
	h.limit.Store(limit)
	return h
}

// sent records that a transfer of n bytes starts at now.
func (h *holdBack) sent(n int64, now time.Time) {
	if h.limit.Load() <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.roll(now)
	h.cur += n
}

// roll moves the byte counts on to now's second (h.mu held).
func (h *holdBack) roll(now time.Time) {
	switch sec := now.Unix(); sec {
	case h.second:
	case h.second + 1:
		h.second, h.prev, h.cur = sec, h.cur, 0
	default:
		h.second, h.prev, h.cur = sec, 0, 0
	}
}

// saturated reports whether the uplink is saturated at now (h.mu held).
func (h *holdBack) saturated(now time.Time) bool {
	if h.busy > 0 && h.inflight.Load() >= h.busy {
		return true
	}
	limit := h.limit.Load()
	if limit <= 0 {
		return false
	}
	h.roll(now)
	frac := float64(now.Nanosecond()) / 1e9 // of the current second gone
	return float64(h.prev)*(1-frac)+float64(h.cur) >= 0.9*float64(limit)
}

// admit decides a segment request's fate from its headers: false means answer it 503
// (swarm.HeldHeader). A root's request is recorded for its cell.
func (h *holdBack) admit(r *http.Request, k cellSegment, now time.Time) bool {
	k.group = r.Header.Get(swarm.GroupHeader)
	if len(k.group) > 64 {
		return true
	}
	switch r.Header.Get(swarm.FetchHeader) {
	case swarm.FetchRoot:
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.roots) >= maxRootFetches {
			for k, at := range h.roots {
				if now.Sub(at) >= rootMemory {
					delete(h.roots, k)
				}
			}
			if len(h.roots) >= maxRootFetches {
				clear(h.roots)
			}
		}
		if _, ok := h.roots[k]; !ok {
			h.roots[k] = now
		}
		return true
	case swarm.FetchMember:
	default:
		return true
	}
	need, err := strconv.ParseInt(r.Header.Get(swarm.NeedHeader), 10, 64)
	if err != nil || time.Duration(need)*time.Millisecond < swarm.UrgentNeed || r.Header.Get("Range") != "" {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.roots[k]
	return !ok || now.Sub(at) >= rootMemory || !h.saturated(now)
}

// transfer counts a segment transfer under way until the returned func is called.
func (h *holdBack) transfer() func() {
	h.inflight.Add(1)
	return func() { h.inflight.Add(-1) }
}
