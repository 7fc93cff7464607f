package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is the registries' clock in tests: time moves only when Advance is called.
type fakeClock struct {
	mu  sync.Mutex // guards the following field
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Registry is what Memory and Redis both are, method for method: the conformance suite
// runs on it. (Production code declares what it uses where it uses it: the gateway's
// Tracker and StatsStore, ingest's Fleet.)
type Registry interface {
	Peer(ctx context.Context, channel, id string) (p Peer, ok bool, err error)
	Leave(ctx context.Context, channel, id string) error
	AddStats(ctx context.Context, channel string, c Counters) error
	Stats(ctx context.Context, channel string) (ChannelStats, error)
	LoadTimeline(ctx context.Context, channel, rendition string) (t Timeline, ok bool, err error)
	SaveTimeline(ctx context.Context, channel, rendition string, t Timeline) error
	List(ctx context.Context, channel, rendition string, c ListClaim) (Listing, error)
	AddSample(ctx context.Context, channel string, at time.Time, s Sample) error
	Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]Bucket, error)
	Subscribe(ctx context.Context, p Peer, renditions []string) (map[string]int, error)
	Refresh(ctx context.Context, channel string, ids []string) error
	Roster(ctx context.Context, channel, rendition, group string) ([]Member, error)
	Close() error
}

var (
	_ Registry = (*Memory)(nil)
	_ Registry = (*Redis)(nil)
)

// env is one conformance case: a fresh registry, clock and channel.
type env struct {
	t     *testing.T
	ctx   context.Context
	clock *fakeClock
	reg   Registry
	ch    string
	// newReg makes another registry of the same kind, sharing the store.
	newReg func(t *testing.T, opts Options) Registry
}

func newEnv(t *testing.T, newReg func(t *testing.T, opts Options) Registry) *env {
	clock := newFakeClock()
	return &env{t: t, ctx: t.Context(), clock: clock, reg: newReg(t, Options{Now: clock.Now}),
		ch: freshChannel(t), newReg: newReg}
}

// freshChannel returns a channel name no other test uses, so tests can share one Redis.
func freshChannel(t *testing.T) string {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "test-" + hex.EncodeToString(b)
}

func peerID(n int) string { return fmt.Sprintf("%032x", n) }
func digest(n int) string { return fmt.Sprintf("%064x", n) }

// peer returns peer number n of the env's channel.
func (e *env) peer(n int) Peer {
	return Peer{ID: peerID(n), Channel: e.ch, Addr: fmt.Sprintf("192.0.2.%d:7000", n%250+1)}
}

// joined returns peer n after joining it.
func (e *env) joined(n int) Peer {
	p := e.peer(n)
	e.join(p)
	return p
}

func (e *env) join(p Peer) {
	_, err := e.reg.Subscribe(e.ctx, p, []string{""})
	require.NoError(e.t, err)
}

func (e *env) activePeers() int {
	st, err := e.reg.Stats(e.ctx, e.ch)
	require.NoError(e.t, err)
	return st.ActivePeers
}

// runConformance is the behaviour every Registry implementation must show.
func runConformance(t *testing.T, newReg func(t *testing.T, opts Options) Registry) {
	cases := []struct {
		name string
		run  func(e *env)
	}{
		{"PeerExpiresAfterPeerTTL", testPeerExpiry},
		{"LeaveRemovesAtOnce", testLeave},
		{"PeerReadsLivePeer", testPeerRead},
		{"Stats", testStats},
		{"StatsSaturate", testStatsSaturate},
		{"TimelineNeverGoesBack", testTimeline},
		{"ListNumbersOnceForTheFleet", testList},
		{"ChannelsAreIsolated", testIsolation},
		{"InvalidInputIsBadRequest", testBadRequest},
		{"SeriesBuckets", testSeries},
		{"SeriesBucketsBounded", testSeriesBounded},
		{"SubscribeGivesLowestFreeSlots", testSubscribeSlots},
		{"RosterDropsExpiredAndRefreshKeeps", testRosterExpiry},
		{"LeaveFreesSlots", testLeaveFreesSlots},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(newEnv(t, newReg)) })
	}
}

func testPeerExpiry(e *env) {
	a := e.joined(1)
	require.Equal(e.t, 1, e.activePeers())
	e.clock.Advance(DefaultPeerTTL - time.Millisecond)
	assert.Contains(e.t, e.roster("", ""), a.ID, "live just before PeerTTL")
	e.clock.Advance(time.Millisecond)
	assert.Empty(e.t, e.roster("", ""), "expired at PeerTTL")
	assert.Equal(e.t, 0, e.activePeers())
	a.Addr = "198.51.100.7:9000"
	e.join(a)
	got, ok, err := e.reg.Peer(e.ctx, e.ch, a.ID)
	require.NoError(e.t, err)
	require.True(e.t, ok, "subscribing again registers it again")
	assert.Equal(e.t, a.Addr, got.Addr, "with its new info")
}

func testLeave(e *env) {
	a, b := e.joined(1), e.joined(2)
	require.NoError(e.t, e.reg.Leave(e.ctx, e.ch, a.ID))
	assert.Equal(e.t, 1, e.activePeers())
	assert.Equal(e.t, map[string]int{b.ID: 1}, e.roster("", ""))
	_, ok, err := e.reg.Peer(e.ctx, e.ch, a.ID)
	require.NoError(e.t, err)
	assert.False(e.t, ok)
	require.NoError(e.t, e.reg.Leave(e.ctx, e.ch, peerID(99)), "leaving twice or unknown is fine")
}

func testStats(e *env) {
	st, err := e.reg.Stats(e.ctx, e.ch)
	require.NoError(e.t, err)
	assert.Equal(e.t, ChannelStats{}, st, "unknown channel")
	e.joined(1)
	e.joined(2)
	require.NoError(e.t, e.reg.AddStats(e.ctx, e.ch, Counters{BytesFromGateway: 100, BytesFromPeers: 300}))
	require.NoError(e.t, e.reg.AddStats(e.ctx, e.ch, Counters{}))
	require.NoError(e.t, e.reg.AddStats(e.ctx, e.ch, Counters{
		BytesFromPeers: 1, BytesUploaded: 2, SegmentsFromGateway: 3, SegmentsFromPeers: 4,
		IntegrityFailures: 5, NeighbourFailures: 6, GatewayEgressBytes: 7,
	}))
	st, err = e.reg.Stats(e.ctx, e.ch)
	require.NoError(e.t, err)
	assert.Equal(e.t, ChannelStats{ActivePeers: 2, Counters: Counters{
		BytesFromGateway: 100, BytesFromPeers: 301, BytesUploaded: 2, SegmentsFromGateway: 3,
		SegmentsFromPeers: 4, IntegrityFailures: 5, NeighbourFailures: 6, GatewayEgressBytes: 7,
	}}, st)
}

func testIsolation(e *env) {
	a := e.joined(1)
	require.NoError(e.t, e.reg.AddStats(e.ctx, e.ch, Counters{BytesUploaded: 9}))
	other := Peer{ID: peerID(2), Channel: freshChannel(e.t), Addr: "192.0.2.9:7000"}
	e.join(other)
	st, err := e.reg.Stats(e.ctx, other.Channel)
	require.NoError(e.t, err)
	assert.Equal(e.t, ChannelStats{ActivePeers: 1}, st)
	ms, err := e.reg.Roster(e.ctx, other.Channel, "", "")
	require.NoError(e.t, err)
	require.Len(e.t, ms, 1)
	assert.Equal(e.t, other.ID, ms[0].ID)
	assert.Equal(e.t, 0, ms[0].Slot, "each channel's cells have their own slots")
	assert.Equal(e.t, map[string]int{a.ID: 0}, e.roster("", ""))
}

func testBadRequest(e *env) {
	ctx, ch, id := e.ctx, e.ch, peerID(1)
	subscribe := func(p Peer, rs ...string) error {
		_, err := e.reg.Subscribe(ctx, p, rs)
		return err
	}
	stats := func(ch string) error {
		_, err := e.reg.Stats(ctx, ch)
		return err
	}
	roster := func(ch, r string) error {
		_, err := e.reg.Roster(ctx, ch, r, "")
		return err
	}
	for name, err := range map[string]error{
		"subscribe bad channel":   subscribe(Peer{ID: id, Channel: "no spaces"}, ""),
		"subscribe bad id":        subscribe(Peer{ID: "ABC", Channel: ch}, ""),
		"subscribe bad group":     subscribe(Peer{ID: id, Channel: ch, Group: "a b"}, ""),
		"subscribe bad rendition": subscribe(Peer{ID: id, Channel: ch}, "x"),
		"leave bad id":            e.reg.Leave(ctx, ch, "x"),
		"leave bad channel":       e.reg.Leave(ctx, "{x}", id),
		"refresh bad channel":     e.reg.Refresh(ctx, "a:b", []string{id}),
		"roster bad channel":      roster("", ""),
		"roster bad rendition":    roster(ch, "rx"),
		"addstats bad chan":       e.reg.AddStats(ctx, "a:b", Counters{BytesUploaded: 1}),
		"stats bad chan":          stats(""),
	} {
		assert.ErrorIs(e.t, err, ErrBadRequest, name)
	}
}

func testTimeline(e *env) {
	_, ok, err := e.reg.LoadTimeline(e.ctx, e.ch, "")
	require.NoError(e.t, err)
	assert.False(e.t, ok, "nothing saved yet")
	require.NoError(e.t, e.reg.SaveTimeline(e.ctx, e.ch, "", Timeline{NextSeq: 100, DiscSeq: 3, TargetDuration: 2}))
	require.NoError(e.t, e.reg.SaveTimeline(e.ctx, e.ch, "", Timeline{NextSeq: 90, DiscSeq: 5, TargetDuration: 2}))
	require.NoError(e.t, e.reg.SaveTimeline(e.ctx, e.ch, "r1", Timeline{NextSeq: 7, TargetDuration: 6}))
	got, ok, err := e.reg.LoadTimeline(e.ctx, e.ch, "")
	require.NoError(e.t, err)
	assert.True(e.t, ok)
	assert.Equal(e.t, Timeline{NextSeq: 100, DiscSeq: 5, TargetDuration: 2}, got, "each field keeps its largest value")
	got, _, err = e.reg.LoadTimeline(e.ctx, e.ch, "r1")
	require.NoError(e.t, err)
	assert.Equal(e.t, Timeline{NextSeq: 7, TargetDuration: 6}, got, "renditions are separate")
	e.clock.Advance(24 * time.Hour)
	got, _, err = e.reg.LoadTimeline(e.ctx, e.ch, "")
	require.NoError(e.t, err)
	assert.Equal(e.t, uint64(100), got.NextSeq, "no expiry")
	assert.ErrorIs(e.t, e.reg.SaveTimeline(e.ctx, "bad channel", "", Timeline{}), ErrBadRequest)
	assert.ErrorIs(e.t, e.reg.SaveTimeline(e.ctx, e.ch, "../x", Timeline{}), ErrBadRequest)
}

func testList(e *env) {
	list := func(rendition string, n int, disc bool, minSeq uint64) Listing {
		l, err := e.reg.List(e.ctx, e.ch, rendition, ListClaim{Digest: digest(n), Disc: disc, MinSeq: minSeq})
		require.NoError(e.t, err)
		return l
	}
	assert.Equal(e.t, Listing{Seq: 40, Disc: false, DiscSeq: 0}, list("", 1, false, 40), "the first listing starts at MinSeq")
	assert.Equal(e.t, Listing{Seq: 41}, list("", 2, false, 0), "then the next number")
	assert.Equal(e.t, Listing{Seq: 40}, list("", 1, true, 99), "a listed digest keeps its listing, whoever asks")
	assert.Equal(e.t, Listing{Seq: 42, Disc: true, DiscSeq: 1}, list("", 3, true, 42), "a discontinuity counts")
	assert.Equal(e.t, Listing{Seq: 50, DiscSeq: 1}, list("", 4, false, 50), "a gateway further on moves the fleet on")
	t, ok, err := e.reg.LoadTimeline(e.ctx, e.ch, "")
	require.NoError(e.t, err)
	assert.True(e.t, ok)
	assert.Equal(e.t, uint64(51), t.NextSeq, "the timeline follows the listings")
	assert.Equal(e.t, Listing{Seq: 0}, list("r1", 1, false, 0), "renditions are numbered apart")
	if _, shared := e.reg.(*Redis); shared { // a Memory is one gateway's own
		other := e.newReg(e.t, Options{Now: e.clock.Now})
		l, lerr := other.List(e.ctx, e.ch, "", ListClaim{Digest: digest(2)})
		require.NoError(e.t, lerr)
		assert.Equal(e.t, Listing{Seq: 41}, l, "another gateway on the same store sees the same listing")
	}

	for n := range MaxListings { // the oldest listings are forgotten, the numbering goes on
		list("r2", 1000+n, false, 0)
	}
	assert.Equal(e.t, Listing{Seq: MaxListings}, list("r2", 5000, false, 0))
	assert.Equal(e.t, Listing{Seq: MaxListings + 1}, list("r2", 1000, false, 0), "forgotten: listed anew")
	assert.Equal(e.t, Listing{Seq: MaxListings - 1}, list("r2", 1000+MaxListings-1, false, 0), "still known")

	maxAge := func(n int, age time.Duration) Listing {
		l, lerr := e.reg.List(e.ctx, e.ch, "r3", ListClaim{Digest: digest(n), MaxAge: age})
		require.NoError(e.t, lerr)
		return l
	}
	assert.Equal(e.t, Listing{Seq: 0}, maxAge(1, 5*time.Second))
	e.clock.Advance(4 * time.Second)
	assert.Equal(e.t, Listing{Seq: 0}, maxAge(1, 5*time.Second), "young enough: the same listing")
	e.clock.Advance(2 * time.Second)
	assert.Equal(e.t, Listing{Seq: 0}, maxAge(1, 0), "no age limit")
	assert.Equal(e.t, Listing{Seq: 1}, maxAge(1, 5*time.Second), "the same bytes later: listed anew")
	assert.Equal(e.t, Listing{Seq: 1}, maxAge(1, 5*time.Second), "and that listing is kept")

	behind := func(n int, by uint64) Listing {
		l, lerr := e.reg.List(e.ctx, e.ch, "r4", ListClaim{Digest: digest(n), MaxBehind: by})
		require.NoError(e.t, lerr)
		return l
	}
	for n := range 5 {
		behind(n, 0)
	}
	assert.Equal(e.t, Listing{Seq: 1}, behind(1, 4), "4 behind the next number (5): the same listing")
	assert.Equal(e.t, Listing{Seq: 5}, behind(0, 4), "5 behind: listed anew")

	_, err = e.reg.List(e.ctx, e.ch, "", ListClaim{Digest: "nothex"})
	assert.ErrorIs(e.t, err, ErrBadRequest)
	_, err = e.reg.List(e.ctx, "bad channel", "", ListClaim{Digest: digest(1)})
	assert.ErrorIs(e.t, err, ErrBadRequest)
}

func testPeerRead(e *env) {
	a := e.peer(1)
	a.Group, a.ICE, a.Cert = "site-a", true, digest(9) // every field survives the registry
	_, ok, err := e.reg.Peer(e.ctx, e.ch, a.ID)
	require.NoError(e.t, err)
	assert.False(e.t, ok, "not joined")
	e.join(a)
	got, ok, err := e.reg.Peer(e.ctx, e.ch, a.ID)
	require.NoError(e.t, err)
	assert.True(e.t, ok)
	a.Renditions = []string{""}
	assert.Equal(e.t, a, got)
	e.clock.Advance(DefaultPeerTTL)
	_, ok, err = e.reg.Peer(e.ctx, e.ch, a.ID)
	require.NoError(e.t, err)
	assert.False(e.t, ok, "expired")
	_, _, err = e.reg.Peer(e.ctx, e.ch, "nope")
	assert.ErrorIs(e.t, err, ErrBadRequest)
}

// subscribe subscribes peer p to renditions and returns its slots.
func (e *env) subscribe(p Peer, renditions ...string) map[string]int {
	slots, err := e.reg.Subscribe(e.ctx, p, renditions)
	require.NoError(e.t, err)
	return slots
}

// roster returns the slots of a cell's members by peer ID (leeches as -1-slot).
func (e *env) roster(rendition, group string) map[string]int {
	ms, err := e.reg.Roster(e.ctx, e.ch, rendition, group)
	require.NoError(e.t, err)
	out := map[string]int{}
	for _, m := range ms {
		if m.Leech {
			out[m.ID] = -1 - m.Slot
		} else {
			out[m.ID] = m.Slot
		}
	}
	return out
}

func testSubscribeSlots(e *env) {
	a, b, c := e.peer(1), e.peer(2), e.peer(3)
	assert.Equal(e.t, map[string]int{"r0": 0, "r1": 0}, e.subscribe(a, "r0", "r1"))
	assert.Equal(e.t, map[string]int{"r0": 1}, e.subscribe(b, "r0"))
	assert.Equal(e.t, map[string]int{"r0": 1}, e.subscribe(b, "r0"), "a member keeps its slot")
	leech := e.peer(4)
	leech.Leech = true
	assert.Equal(e.t, map[string]int{"r0": 0}, e.subscribe(leech, "r0"), "leeches have a space of their own")
	other := e.peer(5)
	other.Group = "paris"
	assert.Equal(e.t, map[string]int{"r0": 0}, e.subscribe(other, "r0"), "each group is a cell")
	assert.Equal(e.t, map[string]int{a.ID: 0, b.ID: 1, leech.ID: -1}, e.roster("r0", ""))
	assert.Equal(e.t, map[string]int{other.ID: 0}, e.roster("r0", "paris"))
	confined := e.peer(7)
	confined.Group, confined.Site = "paris", "203.0.113.9"
	assert.Equal(e.t, map[string]int{"r0": 0}, e.subscribe(confined, "r0"), "a peer with a site is in its site's cell")
	assert.Equal(e.t, map[string]int{confined.ID: 0}, e.roster("r0", "paris@203.0.113.9"))
	assert.NotContains(e.t, e.roster("r0", "paris"), confined.ID)
	require.NoError(e.t, e.reg.Leave(e.ctx, e.ch, confined.ID))
	assert.Empty(e.t, e.roster("r0", "paris@203.0.113.9"), "and leaves it")

	assert.Equal(e.t, map[string]int{"r1": 0}, e.subscribe(a, "r1"), "a leaves r0")
	assert.Equal(e.t, map[string]int{"r0": 0}, e.subscribe(c, "r0"), "and its slot is the lowest free one")
	assert.Equal(e.t, map[string]int{c.ID: 0, b.ID: 1, leech.ID: -1}, e.roster("r0", ""))

	_, err := e.reg.Subscribe(e.ctx, e.peer(6), []string{"r0", "r1", "r2", "r3", "r4"})
	assert.ErrorIs(e.t, err, ErrBadRequest, "too many renditions")
	_, err = e.reg.Subscribe(e.ctx, e.peer(6), []string{"x"})
	assert.ErrorIs(e.t, err, ErrBadRequest)
}

func testRosterExpiry(e *env) {
	a, b := e.peer(1), e.peer(2)
	e.subscribe(a, "")
	e.subscribe(b, "")
	e.clock.Advance(DefaultPeerTTL / 2)
	require.NoError(e.t, e.reg.Refresh(e.ctx, e.ch, []string{b.ID}))
	e.clock.Advance(DefaultPeerTTL/2 + time.Millisecond)
	assert.Equal(e.t, map[string]int{b.ID: 1}, e.roster("", ""), "a expired; b was refreshed")
	c := e.peer(3)
	assert.Equal(e.t, map[string]int{"": 0}, e.subscribe(c, ""), "a's slot is free again")
	require.NoError(e.t, e.reg.Refresh(e.ctx, e.ch, []string{a.ID}))
	assert.NotContains(e.t, e.roster("", ""), a.ID, "refresh does not bring back an expired peer")
}

func testLeaveFreesSlots(e *env) {
	a, b := e.peer(1), e.peer(2)
	e.subscribe(a, "r0", "r1")
	e.subscribe(b, "r0")
	require.NoError(e.t, e.reg.Leave(e.ctx, e.ch, a.ID))
	assert.Equal(e.t, map[string]int{b.ID: 1}, e.roster("r0", ""))
	assert.Empty(e.t, e.roster("r1", ""))
	assert.Equal(e.t, map[string]int{"r0": 0, "r1": 0}, e.subscribe(e.peer(3), "r0", "r1"))
}

// testStatsSaturate: deltas near int64's max saturate the counters at MaxCounter, in the
// totals and the buckets; they never fail, wrap, or stop later increments of other fields.
func testStatsSaturate(e *env) {
	const huge = math.MaxInt64 - 5
	at := e.clock.Now()
	for range 3 {
		require.NoError(e.t, e.reg.AddStats(e.ctx, e.ch, Counters{BytesFromPeers: huge, BytesFromGateway: huge}))
		require.NoError(e.t, e.reg.AddSample(e.ctx, e.ch, at, Sample{Counters: Counters{BytesFromPeers: huge}}))
	}
	require.NoError(e.t, e.reg.AddStats(e.ctx, e.ch, Counters{BytesFromPeers: 1, SegmentsFromPeers: 2}))
	require.NoError(e.t, e.reg.AddSample(e.ctx, e.ch, at, Sample{Counters: Counters{BytesFromPeers: 1, SegmentsFromPeers: 2}}))
	st, err := e.reg.Stats(e.ctx, e.ch)
	require.NoError(e.t, err)
	assert.Equal(e.t, int64(MaxCounter), st.BytesFromPeers)
	assert.Equal(e.t, int64(MaxCounter), st.BytesFromGateway)
	assert.Equal(e.t, int64(2), st.SegmentsFromPeers, "other counters still count")
	bs, err := e.reg.Buckets(e.ctx, e.ch, at, at, BucketStep10)
	require.NoError(e.t, err)
	require.Len(e.t, bs, 1)
	assert.Equal(e.t, int64(MaxCounter), bs[0].BytesFromPeers)
	assert.Equal(e.t, int64(2), bs[0].SegmentsFromPeers)
	var sum Bucket
	for range 2000 {
		sum.Merge(bs[0])
	}
	assert.Equal(e.t, int64(MaxCounter), sum.BytesFromPeers, "sums saturate too")
}
