package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/playlist"
)

// window is one rendition's segment window in RAM: the segments listed in its playlist,
// plus those that left the playlist but must stay fetchable (RFC 8216 §6.2.2: for their
// duration plus the playlist's duration). Its ingest publishes each segment once all its
// bytes are held ("publish, then list"), numbered (ingest.Window). Both playlist forms are
// rendered once per change and served as immutable byte slices.
type window struct {
	maxBytes int64       // bound on listed + retired bytes
	latency  LatencyMode // sets the HOLD-BACK of the live playlist; "" is LatencyNormal
	// published, when set, is told of every segment published, once it is listed.
	published func(*ingest.Segment)

	mu        sync.RWMutex // guards the following fields
	size      int          // segments listed (an EVENT playlist lists them all)
	listed    []*ingest.Segment
	retired   []retiredSegment
	byName    map[string]*ingest.Segment
	bytes     int64
	appends   uint64 // segments published since start
	updatedAt time.Time
	info      ingest.PlaylistInfo
	vod       *vodStore             // bytes of on-demand segments; nil unless the playlist is VOD
	vodDigest map[string]heldDigest // VOD segments the gateway has held: their digests for proxies
	refs      map[string]int        // init sections and keys: how many held segments refer to each
	players   []byte                // rendered for players
	proxies   []byte                // rendered for proxies (with digests)
	news      chan struct{}         // closed, and replaced, when a segment is listed
}

var _ ingest.Window = (*window)(nil)

// heldDigest is what proxies need of a VOD segment the gateway has held, kept without its
// bytes so that the store's LRU bound really bounds them.
type heldDigest struct {
	digest playlist.Digest
	size   int64
}

type retiredSegment struct {
	seg     *ingest.Segment
	evictAt time.Time
}

func newWindow(size int, maxBytes int64, latency LatencyMode) *window {
	w := &window{
		size:     size,
		maxBytes: maxBytes,
		latency:  latency,
		byName:   make(map[string]*ingest.Segment),
		refs:     make(map[string]int),
		news:     make(chan struct{}),
	}
	w.render()
	return w
}

// errBehind: a published segment would take the playlist's sequence back.
var errBehind = errors.New("segment behind the window")

// Publish lists seg at the live edge with the init section and key it refers to, retires
// the oldest listed one when the window is full, and evicts what retention and the memory
// bound allow. A segment that does not follow the newest one (a number further on, or a
// discontinuity sequence that does not add up: the fleet listed segments this gateway did
// not) empties the playlist first; one numbered lower is refused.
func (w *window) Publish(now time.Time, seg *ingest.Segment) error {
	if err := w.publish(now, seg); err != nil {
		return err
	}
	if w.published != nil {
		w.published(seg)
	}
	return nil
}

func (w *window) publish(now time.Time, seg *ingest.Segment) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.listed); n > 0 {
		last := w.listed[n-1]
		switch {
		case seg.Seq <= last.Seq || seg.DiscSeq < last.DiscSeq:
			return fmt.Errorf("%w: %d (disc %d) after %d (disc %d)", errBehind, seg.Seq, seg.DiscSeq, last.Seq, last.DiscSeq)
		case seg.Seq != last.Seq+1 || seg.DiscSeq != last.DiscSeq+discontinuity(seg):
			for len(w.listed) > 0 {
				w.retireOldest(now)
			}
		}
	}
	w.appends++
	close(w.news)
	w.news = make(chan struct{})
	w.listed = append(w.listed, seg)
	w.byName[seg.Name] = seg
	w.bytes += seg.Size
	w.hold(seg.Aux)
	for len(w.listed) > w.size && w.info.Type != "EVENT" {
		w.retireOldest(now)
	}
	w.evict(now)
	w.updatedAt = now
	w.render()
	return nil
}

func discontinuity(s *ingest.Segment) uint64 {
	if s.Discontinuity {
		return 1
	}
	return 0
}

// hold counts one more segment referring to each of aux (init sections, keys), holding
// each from its first reference on. drop releases them.
func (w *window) hold(aux []*ingest.Segment) {
	for _, a := range aux {
		if w.refs[a.Name]++; w.refs[a.Name] == 1 {
			w.byName[a.Name] = a
			w.bytes += a.Size
		}
	}
}

// retireOldest moves the oldest listed segment out of the playlist; it stays fetchable for
// its duration plus the playlist's duration.
func (w *window) retireOldest(now time.Time) {
	old := w.listed[0]
	w.listed[0] = nil // the backing array must not keep the segment's bytes alive
	w.listed = w.listed[1:]
	keep := time.Duration((old.Duration + w.listedDuration()) * float64(time.Second))
	w.retired = append(w.retired, retiredSegment{seg: old, evictAt: now.Add(keep)})
}

func (w *window) listedDuration() float64 {
	var d float64
	for _, s := range w.listed {
		d += s.Duration
	}
	return d
}

// evict drops retired segments whose time is up, then, while over the memory bound, the
// oldest retired and finally the oldest listed segments (never the newest).
func (w *window) evict(now time.Time) {
	for len(w.retired) > 0 && (!now.Before(w.retired[0].evictAt) || w.bytes > w.maxBytes) {
		w.dropOldestRetired()
	}
	for w.bytes > w.maxBytes && len(w.listed) > 1 {
		w.retireOldest(now)
		w.dropOldestRetired()
	}
}

// dropOldestRetired forgets the oldest retired segment, clearing its slot so that the
// slice's backing array does not keep its bytes alive until the next reallocation.
func (w *window) dropOldestRetired() {
	w.drop(w.retired[0].seg)
	w.retired[0] = retiredSegment{}
	w.retired = w.retired[1:]
}

func (w *window) drop(s *ingest.Segment) {
	delete(w.byName, s.Name)
	w.bytes -= s.Size
	for _, a := range s.Aux {
		if w.refs[a.Name]--; w.refs[a.Name] == 0 {
			delete(w.refs, a.Name)
			delete(w.byName, a.Name)
			w.bytes -= a.Size
		}
	}
}

// SetPlaylist takes the playlist-level facts of the origin's latest playlist: its version,
// the header and trailer tags the gateway passes through, its target duration, type and
// end. An ended playlist stays ended.
func (w *window) SetPlaylist(info ingest.PlaylistInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	info.Ended = info.Ended || w.info.Ended
	w.info = info
	w.render()
}

// ListVOD lists a whole VOD playlist at once: segments whose bytes are fetched on demand.
func (w *window) ListVOD(segs []*ingest.Segment, info ingest.PlaylistInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.vod = newVODStore(w.maxBytes)
	for _, seg := range segs {
		w.listed = append(w.listed, seg)
		w.byName[seg.Name] = seg
		w.hold(seg.Aux)
	}
	w.size = max(w.size, len(segs))
	w.info = info
	w.render()
}

// render renders both playlist forms, with the header they share.
func (w *window) render() {
	header := w.header()
	w.players = w.renderForm(playlist.ForPlayers, header)
	w.proxies = w.renderForm(playlist.ForProxies, header)
}

// header is the origin's header tags with the hold-back of the channel's latency mode in
// place of the origin's own EXT-X-SERVER-CONTROL and EXT-X-START: a live playlist says
// where players start (and proxies read how many segments to hide); an ended one, which
// players play from its start, says nothing.
func (w *window) header() []string {
	if w.info.Ended {
		return playlist.WithHoldBack(w.info.Header, 0)
	}
	return playlist.WithHoldBack(w.info.Header, w.latency.holdBack(w.info.TargetDuration))
}

func (w *window) renderForm(f playlist.Form, header []string) []byte {
	pw := playlist.Window{TargetDuration: w.info.TargetDuration, Version: w.info.Version,
		Header: header, Trailer: w.info.Trailer, Ended: w.info.Ended, PlaylistType: w.info.Type}
	pw.Segments = make([]playlist.Segment, len(w.listed))
	for i, s := range w.listed {
		pw.Segments[i] = s.Segment
		if held, ok := w.vodDigest[s.Name]; ok {
			pw.Segments[i].Digest, pw.Segments[i].Size = held.digest, held.size
		}
	}
	if len(w.listed) > 0 {
		first := w.listed[0]
		pw.MediaSequence, pw.DiscontinuitySequence = first.Seq, first.DiscSeq-discontinuity(first)
	}
	return playlist.Render(pw, f)
}

// aheadBy is how many segments past its newest a gateway waits for (awaitSegment).
const aheadBy = 2

// awaitSegment returns the named segment, like segment; a name whose number is at most
// aheadBy past the newest listed one — a segment another gateway of the fleet listed a
// moment earlier, asked for here by a client behind a load balancer without stickiness —
// is waited for, until this gateway lists it, ctx ends or wait passes.
func (w *window) awaitSegment(ctx context.Context, name string, wait time.Duration) *ingest.Segment {
	n, _, _ := strings.Cut(name, "-")
	seq, err := strconv.ParseUint(n, 10, 64)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		w.mu.RLock()
		seg, news := w.byName[name], w.news
		ahead := err == nil && len(w.listed) > 0 && seq > w.listed[len(w.listed)-1].Seq && seq <= w.listed[len(w.listed)-1].Seq+aheadBy
		w.mu.RUnlock()
		if seg != nil || !ahead {
			return seg
		}
		select {
		case <-news:
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return nil
		}
	}
}

// segment returns the named segment, listed or retired, or nil.
func (w *window) segment(name string) *ingest.Segment {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.byName[name]
}

// playlist returns the rendered playlist in the given form (the slice is never modified)
// and the target duration.
func (w *window) playlist(f playlist.Form) (body []byte, targetDuration int) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if f == playlist.ForProxies {
		return w.proxies, w.info.TargetDuration
	}
	return w.players, w.info.TargetDuration
}

// status returns what readiness needs.
func (w *window) status() (listed, targetDuration int, updatedAt time.Time, ended bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.listed), w.info.TargetDuration, w.updatedAt, w.info.Ended
}

// appended returns how many segments were published since start.
func (w *window) appended() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.appends
}

// vodStore returns the store of on-demand segments (nil unless the playlist is VOD).
func (w *window) vodStore() *vodStore {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.vod
}

// fetched makes a VOD segment's digest known to proxies once the gateway holds its bytes.
func (w *window) fetched(seg *ingest.Segment) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.vodDigest == nil {
		w.vodDigest = map[string]heldDigest{}
	}
	if _, ok := w.vodDigest[seg.Name]; ok {
		return
	}
	w.vodDigest[seg.Name] = heldDigest{digest: seg.Digest, size: seg.Size}
	w.proxies = w.renderForm(playlist.ForProxies, w.header())
}

// held returns the segments and bytes held, listed and retired.
func (w *window) held() (segments int, bytes int64) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.listed) + len(w.retired), w.bytes
}
