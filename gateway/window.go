package gateway

import (
	"sync"
	"time"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// window is one channel's segment window in RAM: the segments listed in its playlist, plus
// those that left the playlist but must stay fetchable (RFC 8216 §6.2.2: for their duration
// plus the playlist's duration). A segment is appended only once all its bytes are held
// ("publish, then list"). Both playlist forms are rendered once per change and served as
// immutable byte slices.
type window struct {
	size     int         // segments listed
	maxBytes int64       // bound on listed + retired bytes
	latency  LatencyMode // sets the HOLD-BACK of the live playlist; "" is LatencyNormal

	mu        sync.RWMutex // guards the following fields
	td        int
	listed    []*Segment
	retired   []retiredSegment
	byName    map[string]*Segment
	bytes     int64
	discSeq   uint64
	nextSeq   uint64
	appends   uint64 // segments appended since start
	restored  bool   // the timeline was restored: the next segment starts a discontinuity
	updatedAt time.Time
	meta      playlist.Window       // version, header and trailer tags from the origin
	vod       *vodStore             // bytes of on-demand segments; nil unless the playlist is VOD
	vodDigest map[string]heldDigest // VOD segments the gateway has held: their digests for proxies
	refs      map[string]int        // init sections and keys: how many held segments refer to each
	players   []byte                // rendered for players
	proxies   []byte                // rendered for proxies (with digests)
	changed   chan struct{}
}

// heldDigest is what proxies need of a VOD segment the gateway has held, kept without its
// bytes so that the store's LRU bound really bounds them.
type heldDigest struct {
	digest playlist.Digest
	size   int64
}

type retiredSegment struct {
	seg     *Segment
	evictAt time.Time
}

func newWindow(size int, maxBytes int64, targetDuration int, latency LatencyMode) *window {
	w := &window{
		size:     size,
		maxBytes: maxBytes,
		latency:  latency,
		td:       targetDuration,
		byName:   make(map[string]*Segment),
		refs:     make(map[string]int),
		changed:  make(chan struct{}),
	}
	w.render()
	return w
}

// append lists a new segment at the live edge with the next media sequence number, with
// the init section and key it refers to (aux), retires the oldest listed one when the window
// is full, and evicts what retention and the memory bound allow. meta carries the segment's
// tags (Name, Digest and Size are the window's to set, and Seq too, but for the first
// segment of an empty window, which may start further on).
//
// at, when not nil, is the segment's place in the fleet's timeline (Registry.List): the
// window takes it when it is the next number, when the window is new, or when the window
// is behind it (the fleet listed segments this gateway did not: the window starts again
// there, from the fleet's discontinuity sequence); a number the window has passed (bytes
// repeated, or segments numbered alone while the registry was away) is not taken.
func (w *window) append(now time.Time, meta playlist.Segment, data []byte, ext string, aux []*Segment, at *swarm.Listing) *Segment {
	w.mu.Lock()
	defer w.mu.Unlock()
	var empty bool
	meta.Discontinuity, w.nextSeq, empty = w.place(meta)
	if at != nil && (at.Seq >= w.nextSeq || empty) {
		if at.Seq != w.nextSeq || empty {
			for len(w.listed) > 0 {
				w.retireOldest(now)
			}
			w.nextSeq, w.discSeq = at.Seq, at.DiscSeq
			if at.Disc {
				w.discSeq--
			}
		}
		meta.Discontinuity = at.Disc
	}
	seg := newSegment(w.nextSeq, meta, data, ext, aux)
	w.nextSeq++
	w.appends++
	w.restored = false
	w.listed = append(w.listed, seg)
	w.byName[seg.Name] = seg
	w.bytes += seg.Size
	w.hold(aux)
	for len(w.listed) > w.size {
		w.retireOldest(now)
	}
	w.evict(now)
	w.updatedAt = now
	w.changedNow()
	return seg
}

// hold counts one more segment referring to each of aux (init sections, keys), holding
// each from its first reference on. drop releases them.
func (w *window) hold(aux []*Segment) {
	for _, a := range aux {
		if w.refs[a.Name]++; w.refs[a.Name] == 1 {
			w.byName[a.Name] = a
			w.bytes += a.Size
		}
	}
}

// changedNow renders both playlist forms and wakes whoever waits for the next change.
func (w *window) changedNow() {
	w.render()
	close(w.changed)
	w.changed = make(chan struct{})
}

// retireOldest moves the oldest listed segment out of the playlist; it stays fetchable for
// its duration plus the playlist's duration.
func (w *window) retireOldest(now time.Time) {
	old := w.listed[0]
	w.listed[0] = nil // the backing array must not keep the segment's bytes alive
	w.listed = w.listed[1:]
	if old.Discontinuity {
		w.discSeq++
	}
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

func (w *window) drop(s *Segment) {
	delete(w.byName, s.Name)
	w.bytes -= s.Size
	for _, a := range s.aux {
		if w.refs[a.Name]--; w.refs[a.Name] == 0 {
			delete(w.refs, a.Name)
			delete(w.byName, a.Name)
			w.bytes -= a.Size
		}
	}
}

// setMeta takes the playlist-level tags of the origin's latest playlist: its version, the
// header and trailer tags the gateway passes through.
func (w *window) setMeta(version int, header, trailer []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.meta.Version, w.meta.Header, w.meta.Trailer = version, header, trailer
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
	if w.meta.Ended {
		return playlist.WithHoldBack(w.meta.Header, 0)
	}
	return playlist.WithHoldBack(w.meta.Header, w.latency.holdBack(w.td))
}

func (w *window) renderForm(f playlist.Form, header []string) []byte {
	pw := playlist.Window{TargetDuration: w.td, DiscontinuitySequence: w.discSeq, Version: w.meta.Version,
		Header: header, Trailer: w.meta.Trailer, Ended: w.meta.Ended, PlaylistType: w.meta.PlaylistType}
	pw.Segments = make([]playlist.Segment, len(w.listed))
	for i, s := range w.listed {
		pw.Segments[i] = s.Segment
		if held, ok := w.vodDigest[s.Name]; ok {
			pw.Segments[i].Digest, pw.Segments[i].Size = held.digest, held.size
		}
	}
	if len(w.listed) > 0 {
		pw.MediaSequence = w.listed[0].Seq
	}
	return playlist.Render(pw, f)
}

// segment returns the named segment, listed or retired, or nil.
func (w *window) segment(name string) *Segment {
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
		return w.proxies, w.td
	}
	return w.players, w.td
}

// status returns what readiness and stats need.
func (w *window) status() (listed, targetDuration int, updatedAt time.Time) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.listed), w.td, w.updatedAt
}

// appended returns how many segments were appended since start.
func (w *window) appended() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.appends
}

// capacity is how many segments the playlist lists at most.
func (w *window) capacity() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.size
}

// growTo lets the playlist list n segments (an ended origin playlist is taken whole).
func (w *window) growTo(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.size = max(w.size, n)
}

// end marks the playlist as ended (EXT-X-ENDLIST, and EXT-X-PLAYLIST-TYPE:VOD when the
// origin said VOD): nothing is appended or removed any more.
func (w *window) end(playlistType string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.meta.Ended {
		return
	}
	w.meta.Ended = true
	if playlistType == "VOD" {
		w.meta.PlaylistType = "VOD"
	}
	w.changedNow()
}

// setType sets the EXT-X-PLAYLIST-TYPE the playlist is written with.
func (w *window) setType(t string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.meta.PlaylistType = t
}

// listVOD lists a whole VOD playlist at once: segments whose bytes are fetched on demand.
func (w *window) listVOD(segs []*Segment, playlistType string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.vod = newVODStore(w.maxBytes)
	for _, seg := range segs {
		w.listed = append(w.listed, seg)
		w.byName[seg.Name] = seg
		w.hold(seg.aux)
	}
	w.nextSeq += uint64(len(segs))
	w.size = max(w.size, len(segs))
	w.meta.Ended, w.meta.PlaylistType = true, playlistType
	w.changedNow()
}

// vodStore returns the store of on-demand segments (nil unless the playlist is VOD).
func (w *window) vodStore() *vodStore {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.vod
}

// fetched makes a VOD segment's digest known to proxies once the gateway holds its bytes.
func (w *window) fetched(seg *Segment) {
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

// empty reports whether no segment was ever listed here (a restored timeline included).
func (w *window) empty() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.listed) == 0 && len(w.retired) == 0
}

// ended reports whether the playlist ended.
func (w *window) ended() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.meta.Ended
}

// held returns the segments and bytes held, listed and retired.
func (w *window) held() (segments int, bytes int64) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.listed) + len(w.retired), w.bytes
}

// next returns a channel closed at the next change of the window.
func (w *window) next() <-chan struct{} {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.changed
}

// setTargetDuration fixes the target duration once, before the first segment is listed
// (unless a restored timeline fixed it already). It reports the duration in force.
func (w *window) setTargetDuration(td int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.td == 0 && td > 0 {
		w.td = td
		w.render()
	}
	return w.td
}

// claim is what the window asks of the fleet's timeline for a segment with meta (its
// Digest set), before append: the discontinuity append would give it, the number it would
// get, and how old and how far behind a listing of the same bytes may be to count: the
// source's span (and count of segments) plus two target durations (gateways poll at most
// that far apart).
func (w *window) claim(meta playlist.Segment, span time.Duration, segments int) swarm.ListClaim {
	w.mu.RLock()
	defer w.mu.RUnlock()
	disc, seq, _ := w.place(meta)
	return swarm.ListClaim{Digest: meta.Digest.String(), Disc: disc, MinSeq: seq,
		MaxAge: span + 2*time.Duration(max(w.td, 1))*time.Second, MaxBehind: uint64(segments) + 2}
}

// place is where the window would list a segment with meta on its own: whether it starts a
// discontinuity (never the first one, unless after a restored timeline), and its number (a
// source that numbers its segments itself, see tsIngest, sets where the first one stands;
// from then on the window numbers them, never going back). empty: nothing listed yet. The
// caller holds w.mu.
func (w *window) place(meta playlist.Segment) (disc bool, seq uint64, empty bool) {
	empty = len(w.listed)+len(w.retired) == 0
	seq = w.nextSeq
	if empty {
		seq = max(seq, meta.Seq)
	}
	return (meta.Discontinuity && !empty) || w.restored, seq, empty
}

// timeline returns what must survive a restart: the next sequence number, the
// discontinuity sequence once every listed segment has left, the target duration.
func (w *window) timeline() swarm.Timeline {
	w.mu.RLock()
	defer w.mu.RUnlock()
	disc := w.discSeq
	for _, s := range w.listed {
		if s.Discontinuity {
			disc++
		}
	}
	return swarm.Timeline{NextSeq: w.nextSeq, DiscSeq: disc, TargetDuration: w.td}
}

// restore continues a saved timeline; it applies only before the first segment is listed.
// The first segment after it starts a discontinuity (what came before is gone).
func (w *window) restore(t swarm.Timeline) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.nextSeq > 0 || len(w.listed) > 0 {
		return false
	}
	w.nextSeq, w.discSeq, w.td, w.restored = t.NextSeq, t.DiscSeq, t.TargetDuration, true
	w.render()
	return true
}
