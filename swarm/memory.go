package swarm

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is the registry held in this process's memory, for a single gateway without Redis:
// live peers, who holds which segment, per-channel counters and time buckets, and each
// rendition's timeline. The gateway is its only user; peers reach it through the tracker API.
// Expiry is checked against Options.Now on every read; expired entries are removed lazily,
// and each write to a channel sweeps the whole channel at most once per sweep interval (the
// shortest TTL), so a channel's dead peers and holdings never pile up.
type Memory struct {
	opts       Options
	sweepEvery int64 // ms between sweeps of one channel

	mu       sync.Mutex // guards the following fields
	channels map[string]*memChannel
}

// memChannel is one channel's state. Expiries are unix milliseconds, as in Redis.
type memChannel struct {
	peers     map[string]memPeer // peer id -> registration
	stats     Counters
	timelines map[string]*Timeline    // by rendition
	listings  map[string]*memListings // by rendition
	series    *memSeries              // stats over time; nil until the first sample
	cells     map[cellKey]*memCell    // the cells' slots (cells.go)
	nextSweep int64                   // writes after this time sweep the channel
}

type memPeer struct {
	Peer
	expiry int64
}

// NewMemory returns an empty in-memory registry; zero fields of opts take their defaults.
func NewMemory(opts Options) *Memory {
	opts = opts.WithDefaults()
	sweep := opts.PeerTTL
	return &Memory{
		opts:       opts,
		sweepEvery: sweep.Milliseconds(),
		channels:   make(map[string]*memChannel),
	}
}

func (m *Memory) now() int64 { return m.opts.Now().UnixMilli() }

func (m *Memory) expiry(now int64, ttl time.Duration) int64 { return now + ttl.Milliseconds() }

// channel returns the channel's state, creating it, and sweeps it when due. It is called
// for writes only, with m.mu held.
func (m *Memory) channel(name string, now int64) *memChannel {
	ch := m.channels[name]
	if ch == nil {
		ch = &memChannel{peers: make(map[string]memPeer)}
		m.channels[name] = ch
	}
	if now >= ch.nextSweep {
		ch.sweep(now)
		ch.nextSweep = now + m.sweepEvery
	}
	return ch
}

// Peer returns the live peer id of channel.
func (m *Memory) Peer(_ context.Context, channel, id string) (Peer, bool, error) {
	if err := checkChannelPeer(channel, id); err != nil {
		return Peer{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch := m.channels[channel]; ch != nil {
		if p, ok := ch.peers[id]; ok && p.expiry > m.now() {
			return p.Peer, true, nil
		}
	}
	return Peer{}, false, nil
}

// Leave removes the peer and frees its slots at once.
func (m *Memory) Leave(_ context.Context, channel, id string) error {
	if err := checkChannelPeer(channel, id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels[channel]
	if ch == nil {
		return nil
	}
	if p, ok := ch.peers[id]; ok {
		ch.leaveCells(p.Peer, nil)
	}
	delete(ch.peers, id)
	return nil
}

// AddStats adds the delta c to the channel's counters.
func (m *Memory) AddStats(_ context.Context, channel string, c Counters) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if c.IsZero() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.channel(channel, m.now()).stats.Add(c)
	return nil
}

// Stats returns the channel's counters and active peer count.
func (m *Memory) Stats(_ context.Context, channel string) (ChannelStats, error) {
	if err := checkChannel(channel); err != nil {
		return ChannelStats{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels[channel]
	if ch == nil {
		return ChannelStats{}, nil
	}
	now := m.now()
	st := ChannelStats{Counters: ch.stats}
	for _, p := range ch.peers {
		if p.expiry > now {
			st.ActivePeers++
		}
	}
	return st, nil
}

// Close does nothing: a Memory holds no outside resources.
func (m *Memory) Close() error { return nil }

// sweep removes every expired peer of the channel, freeing its slots.
func (ch *memChannel) sweep(now int64) {
	for id, p := range ch.peers {
		if p.expiry <= now {
			ch.leaveCells(p.Peer, nil)
			delete(ch.peers, id)
		}
	}
}

// checkChannel validates a channel name.
func checkChannel(channel string) error {
	if !ValidChannel(channel) {
		return badf("channel %q: want 1-64 of A-Z a-z 0-9 _ -", channel)
	}
	return nil
}

// LoadTimeline returns what was recorded of a rendition's timeline (rendition "" for a
// channel whose origin is a single media playlist) by List and SaveTimeline; ok is false
// when nothing was.
func (m *Memory) LoadTimeline(_ context.Context, channel, rendition string) (Timeline, bool, error) {
	if err := checkStream(channel, rendition); err != nil {
		return Timeline{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels[channel]
	if ch == nil || ch.timelines[rendition] == nil {
		return Timeline{}, false, nil
	}
	return *ch.timelines[rendition], true, nil
}

// SaveTimeline records t field by field, keeping the larger value of each: a timeline
// never goes back, whichever gateway saves it.
func (m *Memory) SaveTimeline(_ context.Context, channel, rendition string, t Timeline) error {
	if err := checkStream(channel, rendition); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channel(channel, m.now())
	if ch.timelines == nil {
		ch.timelines = map[string]*Timeline{}
	}
	old := ch.timelines[rendition]
	if old == nil {
		old = &Timeline{}
		ch.timelines[rendition] = old
	}
	old.NextSeq = max(old.NextSeq, t.NextSeq)
	old.DiscSeq = max(old.DiscSeq, t.DiscSeq)
	old.TargetDuration = max(old.TargetDuration, t.TargetDuration)
	return nil
}

// memListings is one rendition's recent listings (List), oldest first in order.
type memListings struct {
	byDigest map[string]memListing
	order    []string
	lastDisc uint64 // DiscSeq of the newest listing
}

type memListing struct {
	Listing
	at int64 // when it was listed, unix ms
}

// List returns where the segment with digest c.Digest stands in the rendition's
// fleet-wide timeline: as the first gateway to list it recorded it (among the last
// MaxListings listed, no longer than c.MaxAge ago and no further than c.MaxBehind behind
// the next number), or else as it is recorded now: the next sequence number (at least
// c.MinSeq), c.Disc, and the discontinuity sequence that follows from it (at least
// c.MinDiscSeq). Every gateway of a fleet thus lists the same bytes under the same number,
// and bytes that come again later (a looping or restarted source) under a new one. A new
// listing also records the timeline (LoadTimeline): no SaveTimeline is needed per segment.
func (m *Memory) List(_ context.Context, channel, rendition string, c ListClaim) (Listing, error) {
	if err := checkStream(channel, rendition); err != nil {
		return Listing{}, err
	}
	if !ValidDigest(c.Digest) {
		return Listing{}, badf("digest %q: want 64 lower-case hex digits", c.Digest)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channel(channel, m.now())
	if ch.listings == nil {
		ch.listings = map[string]*memListings{}
	}
	ls := ch.listings[rendition]
	if ls == nil {
		ls = &memListings{byDigest: map[string]memListing{}}
		ch.listings[rendition] = ls
	}
	if ch.timelines == nil {
		ch.timelines = map[string]*Timeline{}
	}
	t := ch.timelines[rendition]
	if t == nil {
		t = &Timeline{}
		ch.timelines[rendition] = t
	}
	now := m.now()
	if l, ok := ls.byDigest[c.Digest]; ok && (c.MaxAge <= 0 || now-l.at <= c.MaxAge.Milliseconds()) &&
		(c.MaxBehind == 0 || l.Seq+c.MaxBehind >= t.NextSeq) {
		return l.Listing, nil
	}
	l := Listing{Seq: max(t.NextSeq, c.MinSeq), Disc: c.Disc, DiscSeq: ls.lastDisc}
	if c.Disc {
		l.DiscSeq++
	}
	l.DiscSeq = max(l.DiscSeq, c.MinDiscSeq)
	if _, again := ls.byDigest[c.Digest]; again { // listed anew: drop the old place in order
		ls.order = slices.DeleteFunc(ls.order, func(d string) bool { return d == c.Digest })
	}
	ls.byDigest[c.Digest], ls.lastDisc = memListing{l, now}, l.DiscSeq
	ls.order = append(ls.order, c.Digest)
	if len(ls.order) > MaxListings {
		delete(ls.byDigest, ls.order[0])
		ls.order = ls.order[1:]
	}
	t.NextSeq, t.DiscSeq = l.Seq+1, max(t.DiscSeq, l.DiscSeq)
	if t.TargetDuration == 0 {
		t.TargetDuration = c.TargetDuration
	}
	return l, nil
}

// checkStream checks a channel and rendition name.
func checkStream(channel, rendition string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if !ValidRendition(rendition) {
		return badf("rendition %q: want r0, r1, … or empty", rendition)
	}
	return nil
}
