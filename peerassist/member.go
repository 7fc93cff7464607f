package peerassist

import (
	"cmp"
	"context"
	"errors"
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

// segInfo is what the gateway's playlist says of a segment: the trust root for its bytes.
type segInfo struct {
	digest    playlist.Digest
	size      int64
	path      string // the segment's path on the gateway
	rendition string
	seq       uint64        // media sequence number; 0 for an init section
	dur       time.Duration // 0 for an init section
	gen       uint64        // playlist generation that last listed it
}

// member is the proxy's membership in one channel's swarm: its peer ID, the segment names
// the gateway listed, its counters, and the pending "have" announcements.
type member struct {
	channel string
	stats   counters
	players players              // the players' sessions, for QoE (qoe.go)
	haves   chan playlist.Digest // bounded; a full queue drops (the holding is just not advertised)
	fresh   chan segInfo         // new segments to prefetch; bounded, a full queue drops
	joined  chan struct{}        // closed when the first announce succeeds
	joinOne sync.Once            // closes joined

	mu         sync.Mutex // guards the following fields
	id         string
	peerToken  string   // authenticates tracker calls as id (see gateway.PeerTokenTTL)
	banned     []string // peers caught sending bad bytes, to report with the next announce
	known      map[string]segInfo
	gen        uint64
	td         time.Duration        // the playlist's target duration
	token      string               // the player's signed-URL token, passed on to the gateway
	watched    map[string]time.Time // rendition → when a player last asked for its playlist
	heads      map[string]*playhead // rendition → its player's playhead
	lastActive time.Time
	reported   swarm.Counters // counters the gateway has accepted
	running    bool
}

func newMember(channel string) *member {
	return &member{channel: channel, haves: make(chan playlist.Digest, 256), fresh: make(chan segInfo, 16),
		joined: make(chan struct{}), known: map[string]segInfo{}, watched: map[string]time.Time{},
		heads: map[string]*playhead{}}
}

// learn records the segments of a fresh playlist of a rendition ("" for a media origin),
// forgets names long gone from it, and queues the newest two it had not seen before for
// prefetch — at the live edge only: the newest of an ended (VOD) playlist are its last.
// active says whether a player asked for the playlist.
func (m *member) learn(rendition string, w *playlist.Window, now time.Time, active bool) {
	var newest []segInfo
	defer func() {
		for _, info := range newest[max(0, len(newest)-2):] {
			select {
			case m.fresh <- info:
			default:
			}
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	if active {
		m.lastActive = now
		m.watched[rendition] = now
	}
	m.td = time.Duration(w.TargetDuration) * time.Second
	dir := "/live/" + m.channel + "/"
	if rendition != "" {
		dir += rendition + "/"
	}
	for _, s := range w.Segments {
		if s.Init != nil { // init sections travel like segments: the playlist gives their digest
			m.know(rendition, dir, s.Init.Name, segInfo{digest: s.Init.Digest, size: s.Init.Size})
		}
		if s.Size == 0 { // the gateway does not hold it yet (VOD): no digest, pass it through
			continue
		}
		info := segInfo{digest: s.Digest, size: s.Size, seq: s.Seq, dur: time.Duration(s.Duration * float64(time.Second))}
		if info, fresh := m.know(rendition, dir, s.Name, info); fresh && !w.Ended {
			newest = append(newest, info)
		}
	}
	for name, info := range m.known {
		if m.gen-info.gen > maxKnownGenerations {
			delete(m.known, name)
		}
	}
}

// know records one object of a rendition's playlist (m.mu held) and reports whether it is
// new. uri is as the gateway wrote it (with a token when URLs are signed); obj gives the
// object's digest, size, sequence number and duration.
func (m *member) know(rendition, dir, uri string, obj segInfo) (segInfo, bool) {
	name, _, _ := strings.Cut(uri, "?")
	key := rendition + "/" + name
	info, seen := m.known[key]
	if !seen {
		info = obj
		info.path, info.rendition = dir+uri, rendition
	}
	info.gen = m.gen
	m.known[key] = info
	return info, !seen
}

func (m *member) lookup(rendition, name string, now time.Time) (segInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastActive = now
	info, ok := m.known[rendition+"/"+name]
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

// playingRenditions returns the renditions whose playlist a player asked for within d.
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

// awaitJoin waits until the first announce succeeded, at most d.
func (m *member) awaitJoin(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.joined:
	case <-t.C:
	case <-ctx.Done():
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

// unauthorized forgets a peer ID the gateway no longer accepts (a restarted gateway with a
// key of its own, an expired token): the next announce joins afresh.
func (m *member) unauthorized(err error) {
	if !errors.Is(err, swarm.ErrUnauthorized) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id, m.peerToken = "", ""
}

// report queues a neighbour caught sending bad bytes for the next announce.
func (m *member) report(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.banned) < swarm.MaxBannedReports && !slices.Contains(m.banned, id) && swarm.ValidPeerID(id) {
		m.banned = append(m.banned, id)
	}
}

// run keeps the membership alive: it announces (with counter deltas) every interval the
// gateway asks for, sends "have" announcements in batches, polls the playlist while a
// player plays (see prefetch), and leaves the swarm when the channel has been idle for
// IdleLeave or ctx ends.
func (m *member) run(ctx context.Context, p *Proxy) {
	var prefetches sync.WaitGroup
	defer prefetches.Wait()
	announce := time.NewTimer(0) // at once
	defer announce.Stop()
	poll := time.NewTimer(m.pollInterval(p.cfg.Now()))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			m.leave(p)
			return
		case d := <-m.haves:
			m.sendHaves(ctx, p, d)
		case <-announce.C:
			if p.cfg.Now().Sub(m.active()) > p.cfg.IdleLeave {
				m.leave(p)
				return
			}
			announce.Reset(m.announce(ctx, p))
		case info := <-m.fresh:
			prefetches.Go(func() { p.prefetch(ctx, m, info) })
		case <-poll.C:
			p.poll(ctx, m)
			poll.Reset(m.pollInterval(p.cfg.Now()))
		}
	}
}

// pollInterval is a random time between a quarter and three quarters of the target
// duration: while a player plays, the proxy notices new segments at least that often even
// when the player is not asking.
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
// playlist for ""), in the proxies' form, with the player's token when it sent one (the
// proxy's own polls reuse the last one).
func (m *member) playlistPath(rendition, token string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if token != "" {
		m.token = token
	}
	q := url.Values{"rawflow": {"peer"}}
	if m.token != "" {
		q.Set(swarm.TokenQuery, m.token)
	}
	dir := "/live/" + m.channel + "/"
	if rendition != "" {
		dir += rendition + "/"
	}
	return dir + "index.m3u8?" + q.Encode()
}

func (m *member) active() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastActive
}

// bannedQuiet is how long a proxy the gateway refused as an uploader stays a leech (the
// gateway's ban lasts 10 minutes).
const bannedQuiet = 10 * time.Minute

// announce heartbeats with the counters not yet accepted, and their breakdowns by
// rendition and by feeding group, and returns when to announce next. On failure the deltas
// stay pending: nothing is lost, they go with the next one.
func (m *member) announce(ctx context.Context, p *Proxy) time.Duration {
	snap, renditions, fedBy := m.stats.pending()
	m.mu.Lock()
	delta := snap
	delta.Sub(m.reported)
	req := swarm.AnnounceRequest{PeerID: m.id, Token: m.peerToken, Channel: m.channel, Addr: p.cfg.AdvertiseAddr,
		Group: p.cfg.Group, Leech: !p.advertising(), Stats: delta, Banned: slices.Clone(m.banned),
		Renditions: renditions, FedBy: fedBy}
	m.mu.Unlock()
	m.stats.trackerRequests.Add(1)
	resp, err := p.tracker.Announce(ctx, req)
	if errors.Is(err, swarm.ErrUnauthorized) {
		p.log.Info("the gateway no longer knows this peer; joining afresh", "channel", m.channel)
		m.unauthorized(err)
		return 0
	}
	if errors.Is(err, swarm.ErrForbidden) && !req.Leech {
		p.log.Warn("the gateway refuses this proxy as an uploader (neighbours reported it); downloading only", "for", bannedQuiet)
		p.uplink.silence(p.cfg.Now().Add(bannedQuiet))
		return 0
	}
	if err != nil {
		p.log.Debug("announce failed", "channel", m.channel, "err", err)
		return time.Second
	}
	m.mu.Lock()
	m.id, m.peerToken = resp.PeerID, resp.Token
	m.reported.Add(delta)
	m.banned = slices.Delete(m.banned, 0, len(req.Banned))
	m.mu.Unlock()
	m.stats.accepted(renditions, fedBy)
	m.joinOne.Do(func() { close(m.joined) })
	return max(time.Duration(resp.IntervalMS)*time.Millisecond, 500*time.Millisecond)
}

// sendHaves announces d and whatever else is queued, in one call.
func (m *member) sendHaves(ctx context.Context, p *Proxy, d playlist.Digest) {
	digests := []string{d.String()}
	for len(digests) < swarm.MaxHaveDigests {
		select {
		case more := <-m.haves:
			digests = append(digests, more.String())
			continue
		default:
		}
		break
	}
	id, token := m.credentials()
	if id == "" {
		return
	}
	m.stats.trackerRequests.Add(1)
	if err := p.tracker.Have(ctx, swarm.HaveRequest{PeerID: id, Token: token, Channel: m.channel, Digests: digests}); err != nil {
		p.log.Debug("have failed", "channel", m.channel, "err", err)
		m.unauthorized(err)
	}
}

// leave sends the counters not yet reported, then leaves the swarm; both bounded to a
// second each, on a context of their own since the proxy's may be over.
func (m *member) leave(p *Proxy) {
	m.mu.Lock()
	id := m.id
	m.running = false
	m.mu.Unlock()
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m.announce(ctx, p)
	ctx, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	id, token := m.credentials()
	if id != "" {
		_ = p.tracker.Leave(ctx, swarm.LeaveRequest{PeerID: id, Token: token, Channel: m.channel})
	}
}
