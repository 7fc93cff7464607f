package peerassist

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

// A segment's deadline is when its player needs it: the moment its buffer runs dry if
// the segment has not arrived. The proxy learns it from CMCD when the player sends it
// (bl, the buffer length), and otherwise infers it from the player's requests (playhead).
// Every rung of the fetch ladder is budgeted against it so that the gateway fallback
// always lands in time.

// playhead infers one player's buffer from the segments the proxy served it: each segment
// delivered in sequence extends the time at which the buffer runs dry by its duration,
// counted from that time or from the delivery, whichever is later (a late delivery means
// the player stalled). A request out of sequence (a start, a seek, a switch) starts over.
type playhead struct {
	mu      sync.Mutex // guards the following fields
	started bool
	lastSeq uint64    // the last segment served
	lastAt  time.Time // when it was served
	dryAt   time.Time // when the buffer runs out if nothing more arrives
	avg     time.Duration
}

// observeBuffer records a buffer length the player reported (CMCD bl) at now.
func (ph *playhead) observeBuffer(now time.Time, bl time.Duration) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.dryAt = now.Add(bl)
}

// served records that segment seq of duration d reached the player at now.
func (ph *playhead) served(seq uint64, d time.Duration, now time.Time) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if d <= 0 {
		return
	}
	switch {
	case ph.started && seq == ph.lastSeq:
		return // served again (a retry or a range request)
	case ph.started && seq == ph.lastSeq+1:
		ph.dryAt = later(ph.dryAt, now).Add(d)
	default:
		ph.dryAt = now.Add(d)
	}
	ph.started, ph.lastSeq, ph.lastAt = true, seq, now
	if ph.avg == 0 {
		ph.avg = d
	}
	ph.avg = (3*ph.avg + d) / 4
}

// deadline returns when the player will need segment seq, and false when the playhead is
// unknown. A segment at or before the last one served is needed now; a later one when the
// buffer runs dry, plus the segments between.
func (ph *playhead) deadline(seq uint64, now time.Time) (time.Time, bool) {
	at, known, _ := ph.need(seq, now, false)
	return at, known
}

// need is deadline, and says too whether at is when the inferred buffer runs dry before
// segment seq (one after the last served) rather than "now" for one already served (a
// retry, a range request, a seek back), which no delivery can meet (see qoe.go). asked says
// the player itself asks for seq: one more than a segment ahead of the next is a jump (a
// player that fell out of the live window and skipped to its sync point, a seek ahead),
// needed when the buffer runs dry, not after segments it will never play.
func (ph *playhead) need(seq uint64, now time.Time, asked bool) (at time.Time, known, dry bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if !ph.started || ph.gone(now) {
		return time.Time{}, false, false
	}
	if seq <= ph.lastSeq {
		return now, true, false
	}
	ahead := seq - ph.lastSeq - 1
	if asked && ahead > 1 {
		ahead = 0
	}
	return later(ph.dryAt, now).Add(time.Duration(ahead) * ph.avg), true, true
}

// gone reports whether the player left (ph.mu held): nothing served for more than two
// segment durations (and a second) and its buffer ran dry. Its next request is a start,
// needed now, not one inferred from a playhead long gone (a returning player would get a
// deadline as far away as its absence was long).
func (ph *playhead) gone(now time.Time) bool {
	return now.After(later(ph.lastAt.Add(2*ph.avg+time.Second), ph.dryAt))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// cmcdBuffer returns the buffer length a request reports in CMCD (CTA-5004), from the
// CMCD query parameter or the CMCD-Request header, and whether it reports one.
func cmcdBuffer(r *http.Request) (time.Duration, bool) {
	sources := []string{r.Header.Get("CMCD-Request")}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil {
		sources = append(sources, q.Get("CMCD"))
	}
	for _, s := range sources {
		if len(s) > 1024 { // bounded: CMCD payloads are short
			continue
		}
		for kv := range strings.SplitSeq(s, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k != "bl" {
				continue
			}
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < 0 || ms > int64(time.Hour/time.Millisecond) {
				continue
			}
			return time.Duration(ms) * time.Millisecond, true
		}
	}
	return 0, false
}

// errDeadline ends the neighbour rung when the gateway must take over.
var errDeadline = errors.New("deadline: the gateway takes over")

// deadline is one fetch's deadline, which a player's request may bring forward while the
// fetch is under way (a prefetch the player then asks for with an empty buffer).
type deadline struct {
	mu      sync.Mutex // guards the following fields
	at      time.Time
	changed chan struct{} // closed when at moves earlier
}

func newDeadline(at time.Time) *deadline {
	return &deadline{at: at, changed: make(chan struct{})}
}

// tighten moves the deadline to at if that is earlier.
func (d *deadline) tighten(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if at.Before(d.at) {
		d.at = at
		close(d.changed)
		d.changed = make(chan struct{})
	}
}

func (d *deadline) get() (time.Time, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at, d.changed
}

// before returns a context that ends reserve before the deadline (following it when it
// is brought forward) with cause errDeadline, or when ctx ends. now is the clock.
func (d *deadline) before(ctx context.Context, reserve time.Duration, now func() time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		for {
			at, changed := d.get()
			t := time.NewTimer(at.Add(-reserve).Sub(now()))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-changed:
				t.Stop()
			case <-t.C:
				cancel(errDeadline)
				return
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// deadlines holds the deadline of each fetch under way, so that a player's request can
// bring a prefetch's forward.
type deadlines struct {
	mu sync.Mutex // guards m
	m  map[playlist.Digest]*deadline
}

// maxDeadlines bounds the map; past it, entries left by fetches that raced their end are
// dropped (a dropped entry only means a later caller cannot tighten that fetch).
const maxDeadlines = 1024

// of returns the deadline of the fetch of d, brought forward to at, or a new one.
func (ds *deadlines) of(d playlist.Digest, at, now time.Time) *deadline {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.m == nil {
		ds.m = map[playlist.Digest]*deadline{}
	}
	if dl := ds.m[d]; dl != nil {
		dl.tighten(at)
		return dl
	}
	if len(ds.m) >= maxDeadlines {
		for k, dl := range ds.m {
			if due, _ := dl.get(); due.Before(now.Add(-time.Minute)) {
				delete(ds.m, k)
			}
		}
	}
	dl := newDeadline(at)
	ds.m[d] = dl
	return dl
}

// forget drops dl, the deadline of the fetch of d, when its fetch ends.
func (ds *deadlines) forget(d playlist.Digest, dl *deadline) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.m[d] == dl {
		delete(ds.m, d)
	}
}

// gatewayEstimate tracks how long gateway fetches take, to reserve enough time for the
// gateway rung: twice the expected time of a fetch plus a margin.
type gatewayEstimate struct {
	mu   sync.Mutex // guards the following fields
	rate float64    // bytes per second; 0 = unknown
	rtt  time.Duration
}

// Bounds of the gateway reserve.
const (
	minReserve     = 300 * time.Millisecond
	maxReserve     = 4 * time.Second
	unknownReserve = time.Second
)

func (g *gatewayEstimate) observe(bytes int64, elapsed time.Duration) {
	if bytes <= 0 || elapsed <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r := float64(bytes) / elapsed.Seconds()
	if g.rate == 0 {
		g.rate, g.rtt = r, elapsed
		return
	}
	g.rate = 0.8*g.rate + 0.2*r
	g.rtt = (4*g.rtt + min(elapsed, maxReserve)) / 5
}

// reserve is the time to leave the gateway rung for a segment of size bytes.
func (g *gatewayEstimate) reserve(size int64) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rate == 0 {
		return unknownReserve
	}
	expect := time.Duration(float64(size) / g.rate * float64(time.Second))
	return min(maxReserve, max(minReserve, 2*max(expect, g.rtt)+200*time.Millisecond))
}
