package peerassist

import (
	"cmp"
	"context"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// maxKnownGenerations is how many playlist refreshes a segment name stays resolvable after
// it was last listed: enough for a player a little behind the window.
const maxKnownGenerations = 16

// segInfo is what the gateway says of a segment (its playlist, or a segment event): the
// trust root for its bytes.
type segInfo struct {
	digest    playlist.Digest
	size      int64
	path      string // the segment's path on the gateway
	rendition string
	seq       uint64        // media sequence number; 0 for an init section
	dur       time.Duration // 0 for an init section
	gen       uint64        // playlist generation that last listed it
	learnt    time.Time     // when the proxy first learnt of it
}

// member is the proxy's membership in one channel's swarm: its peer ID, the segment names
// the gateway listed, its plans (where it gets each stripe of each rendition it plays), its
// counters. Its event stream (stream.go) is the membership; reports carry the counters.
type member struct {
	channel string
	stats   counters
	players players       // the players' sessions, for QoE (qoe.go)
	tokens  tokens        // the signed-URL tokens the gateway accepted (access.go)
	fresh   chan segInfo  // new segments to prefetch; bounded, a full queue drops
	resub   chan struct{} // what the stream subscribes to changed (cap 1)
	// learnt, when set, is called when a segment becomes known (m.mu held).
	learnt func()

	mu        sync.Mutex // guards the following fields
	id        string
	peerToken string // authenticates reports as id (see tracker.TokenTTL)
	// swarmKeys admit this proxy to its neighbours' ports (swarm/admission.go), newest
	// last; clockOffset is the gateway's clock less this machine's, as last heard.
	swarmKeys   []swarm.ChannelKey
	clockOffset time.Duration
	reportEvery time.Duration // as the gateway asks
	banned      []string      // peers caught sending bad bytes, to report
	known       map[string]segInfo
	byDigest    map[playlist.Digest]segInfo // the same, by digest: what the neighbour port may pull through
	gen         uint64
	td          time.Duration        // the playlist's target duration
	watched     map[string]time.Time // rendition → when a player last asked for its playlist
	heads       map[string]*playhead // rendition → its player's playhead
	lastActive  time.Time
	reported    swarm.Counters        // counters the gateway has accepted
	plans       map[string]swarm.Plan // by rendition, as the stream last said
	planned     chan struct{}         // closed, and replaced, when a plan arrives
	subscribed  []string              // the renditions of the open stream; nil when none is
	running     bool
	copies      map[string]copyOf // rendition → the last playlist served (outage.go)
}

func newMember(channel string) *member {
	return &member{channel: channel, fresh: make(chan segInfo, 16), resub: make(chan struct{}, 1),
		known: map[string]segInfo{}, byDigest: map[playlist.Digest]segInfo{}, watched: map[string]time.Time{},
		heads: map[string]*playhead{}, plans: map[string]swarm.Plan{}, planned: make(chan struct{})}
}

// learn records the segments of a fresh playlist of a rendition ("" for a media origin),
// forgets names long gone from it, and queues the newest two it had not seen before for
// prefetch — at the live edge only: the newest of an ended (VOD) playlist are its last.
// active says whether a player asked for the playlist.
func (m *member) learn(rendition string, w *playlist.Window, now time.Time, active bool) {
	var newest []segInfo
	defer func() {
		for _, info := range newest[max(0, len(newest)-2):] {
			m.queue(info)
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	if active {
		m.lastActive = now
		if _, watched := m.watched[rendition]; !watched && !slices.Contains(m.subscribed, rendition) {
			m.signal()
		}
		m.watched[rendition] = now
	}
	m.td = time.Duration(w.TargetDuration) * time.Second
	m.players.setTarget(m.td)
	dir := m.dir(rendition)
	for _, s := range w.Segments {
		if s.Init != nil { // init sections travel like segments: the playlist gives their digest
			m.know(rendition, dir, s.Init.Name, segInfo{digest: s.Init.Digest, size: s.Init.Size})
		}
		if s.Size == 0 { // the gateway does not hold it yet (VOD): no digest, pass it through
			continue
		}
		obj := segInfo{digest: s.Digest, size: s.Size, seq: s.Seq, dur: time.Duration(s.Duration * float64(time.Second)), learnt: now}
		if info, fresh := m.know(rendition, dir, s.Name, obj); fresh && !w.Ended {
			newest = append(newest, info)
		}
	}
	for name, info := range m.known {
		if m.gen-info.gen > maxKnownGenerations {
			delete(m.known, name)
			if m.byDigest[info.digest].path == info.path {
				delete(m.byDigest, info.digest)
			}
		}
	}
}

// learnEvent records a segment the gateway announced on the stream and queues it for
// prefetch when it is new.
func (m *member) learnEvent(ev swarm.SegmentEvent, maxSize int64, now time.Time) {
	d, err := playlist.ParseDigest(ev.Digest)
	if err != nil || ev.Size <= 0 || ev.Size > maxSize || !objectNameRe.MatchString(ev.Name) || !swarm.ValidRendition(ev.Rendition) {
		return // not what a gateway sends
	}
	m.mu.Lock()
	info, fresh := m.know(ev.Rendition, m.dir(ev.Rendition), ev.Name,
		segInfo{digest: d, size: ev.Size, seq: ev.Seq, dur: time.Duration(ev.DurationMS) * time.Millisecond, learnt: now})
	m.mu.Unlock()
	if fresh {
		m.queue(info)
	}
}

// queue hands a new segment to the member's loop for prefetch; a full queue drops it.
func (m *member) queue(info segInfo) {
	select {
	case m.fresh <- info:
	default:
	}
}

// dir is the gateway directory of a rendition's objects (m.mu held or not: channel is fixed).
func (m *member) dir(rendition string) string {
	dir := "/live/" + m.channel + "/"
	if rendition != "" {
		dir += rendition + "/"
	}
	return dir
}

// know records one object of a rendition (m.mu held) and reports whether it is new. uri is
// as the gateway wrote it (with a token when URLs are signed); obj gives the object's
// digest, size, sequence number and duration.
func (m *member) know(rendition, dir, uri string, obj segInfo) (segInfo, bool) {
	name, _, _ := strings.Cut(uri, "?")
	key := rendition + "/" + name
	info, seen := m.known[key]
	if !seen {
		info = obj
		info.path, info.rendition = dir+name, rendition // the token is added per request (gatewayPath)
	}
	info.gen = m.gen
	m.known[key] = info
	m.byDigest[info.digest] = info
	if !seen && m.learnt != nil {
		m.learnt()
	}
	return info, !seen
}

func (m *member) lookup(rendition, name string, now time.Time) (segInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastActive = now
	info, ok := m.known[rendition+"/"+name]
	return info, ok
}

// knownDigest returns what the gateway said of the segment with digest d, if anything.
func (m *member) knownDigest(d playlist.Digest) (segInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	info, ok := m.byDigest[d]
	return info, ok
}

// head returns the playhead of the rendition's player.
func (m *member) head(rendition string) *playhead {
	m.mu.Lock()
	defer m.mu.Unlock()
	ph := m.heads[rendition]
	if ph == nil {
		if len(m.heads) >= maxRenditions {
			clear(m.heads)
		}
		ph = &playhead{}
		m.heads[rendition] = ph
	}
	return ph
}

// maxRenditions bounds the playheads a member keeps, and the renditions whose counters
// are pending a report.
const maxRenditions = 64

// playingRenditions returns the renditions whose playlist a player asked for within d, the
// most recent first.
func (m *member) playingRenditions(now time.Time, d time.Duration) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var rs []string
	for r, at := range m.watched {
		if now.Sub(at) <= d {
			rs = append(rs, r)
		} else {
			delete(m.watched, r)
		}
	}
	slices.SortFunc(rs, func(a, b string) int { return m.watched[b].Compare(m.watched[a]) })
	return rs
}

// playing reports whether a player asked for the channel within max(10 s, 3 target
// durations), and the target duration.
func (m *member) playing(now time.Time) (bool, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	td := cmp.Or(m.td, 2*time.Second)
	return now.Sub(m.lastActive) <= max(10*time.Second, 3*td), td
}

// plan returns the member's plan for a rendition, waiting up to d for one to arrive.
func (m *member) plan(ctx context.Context, rendition string, d time.Duration) (swarm.Plan, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		m.mu.Lock()
		p, ok := m.plans[rendition]
		next := m.planned
		m.mu.Unlock()
		if ok && len(p.Stripes) == swarm.Stripes {
			return p, true
		}
		select {
		case <-next:
		case <-t.C:
			return swarm.Plan{}, false
		case <-ctx.Done():
			return swarm.Plan{}, false
		}
	}
}

// setPlan records a plan the stream brought.
func (m *member) setPlan(p swarm.Plan) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.subscribed, p.Rendition) {
		return
	}
	m.plans[p.Rendition] = p
	close(m.planned)
	m.planned = make(chan struct{})
}

// subscribe records the renditions of the stream now open (nil: none is), forgetting the
// plans of the others.
func (m *member) subscribe(rs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subscribed = rs
	for r := range m.plans {
		if !slices.Contains(rs, r) {
			delete(m.plans, r)
		}
	}
}

// streaming reports whether the member's event stream is open.
func (m *member) streaming() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.subscribed != nil
}

// signal makes the stream subscribe again (m.mu held or not).
func (m *member) signal() {
	select {
	case m.resub <- struct{}{}:
	default:
	}
}

func (m *member) peerID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// credentials returns the peer ID and the token that authenticates it.
func (m *member) credentials() (id, token string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id, m.peerToken
}

// joined records the peer the gateway admitted, how often to report, and its swarm keys.
func (m *member) joined(h swarm.Hello, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id, m.peerToken = h.PeerID, h.Token
	m.reportEvery = max(time.Duration(h.ReportMS)*time.Millisecond, time.Second)
	m.swarmKeys = nil // a gateway restarted with another peer key issues other keys
	m.takeKeys(h.SwarmKeys, h.TimeMS, now)
}

// refreshToken takes a fresh peer token and swarm keys.
func (m *member) refreshToken(te swarm.TokenEvent, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peerToken = te.Token
	m.takeKeys(te.SwarmKeys, te.TimeMS, now)
}

// maxSwarmKeys bounds the swarm keys a member keeps.
const maxSwarmKeys = 4

// takeKeys records swarm keys and the gateway's clock (m.mu held).
func (m *member) takeKeys(keys []swarm.ChannelKey, timeMS int64, now time.Time) {
	if timeMS > 0 {
		m.clockOffset = time.UnixMilli(timeMS).Sub(now)
	}
	for _, k := range keys[:min(len(keys), swarm.MaxSwarmKeys)] {
		if !swarm.ValidChannelKey(k) {
			continue
		}
		if i := slices.IndexFunc(m.swarmKeys, func(o swarm.ChannelKey) bool { return o.Window == k.Window }); i >= 0 {
			m.swarmKeys[i] = k // the gateway's word of the moment
		} else {
			m.swarmKeys = append(m.swarmKeys, k)
		}
	}
	slices.SortFunc(m.swarmKeys, func(a, b swarm.ChannelKey) int { return cmp.Compare(a.Window, b.Window) })
	m.swarmKeys = m.swarmKeys[max(0, len(m.swarmKeys)-maxSwarmKeys):]
}

// swarmKey returns the member's swarm key of a credential window.
func (m *member) swarmKey(window int64) (swarm.ChannelKey, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.swarmKeys {
		if k.Window == window {
			return k, true
		}
	}
	return swarm.ChannelKey{}, false
}

// gatewayNow is now on the gateway's clock, as last heard.
func (m *member) gatewayNow(now time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return now.Add(m.clockOffset)
}

// forget drops a peer ID the gateway no longer accepts (a restarted gateway with a key of
// its own, an expired token): the stream joins afresh.
func (m *member) forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id, m.peerToken = "", ""
}

// run keeps the membership alive: its event stream (stream.go), a report every interval
// the gateway asks for, the prefetch of every new segment, playlist polls while the stream
// is down; it leaves the swarm when the channel has been idle for IdleLeave or ctx ends.
func (m *member) run(ctx context.Context, p *Proxy) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	wg.Go(func() { m.stream(sctx, p) })
	report := time.NewTimer(m.reportInterval())
	defer report.Stop()
	poll := time.NewTimer(m.pollInterval(p.cfg.Now()))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			stopStream()
			m.leave(ctx, p)
			return
		case <-report.C:
			if p.cfg.Now().Sub(m.active()) > p.cfg.IdleLeave {
				stopStream()
				m.leave(ctx, p)
				return
			}
			_ = m.sendReport(ctx, p, false)
			report.Reset(m.reportInterval())
		case info := <-m.fresh:
			wg.Go(func() { p.prefetch(ctx, m, info) })
		case <-poll.C:
			if !m.streaming() { // the stream tells of new segments; without it, ask the playlist
				p.poll(ctx, m)
			}
			poll.Reset(m.pollInterval(p.cfg.Now()))
		}
	}
}

// pollInterval is a random time between a quarter and three quarters of the target
// duration: while a player plays and the stream is down, the proxy notices new segments at
// least that often even when the player is not asking.
func (m *member) pollInterval(now time.Time) time.Duration {
	_, td := m.playing(now)
	return td/4 + rand.N(td/2)
}

// touch records a player's request.
func (m *member) touch(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastActive = now
}

// playlistPath is the gateway path of a playlist (a rendition's, or the channel's entry
// playlist for ""), in the proxies' form, with token when not empty: a player's request
// carries its own token or none (the gateway decides), the proxy's own polls the last
// token the gateway accepted.
func (m *member) playlistPath(rendition, token string) string {
	q := url.Values{"rawflow": {"peer"}}
	if token != "" {
		q.Set(swarm.TokenQuery, token)
	}
	return m.dir(rendition) + "index.m3u8?" + q.Encode()
}

// gatewayPath is the gateway path of a known object, with the token the proxy's own
// requests carry when the channel's URLs are signed.
func (m *member) gatewayPath(info segInfo, now time.Time) string {
	if t := m.tokens.own(now); t != "" {
		return info.path + "?" + url.Values{swarm.TokenQuery: {t}}.Encode()
	}
	return info.path
}

func (m *member) active() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastActive
}

// errNotJoined: the member has no peer ID to report as.
