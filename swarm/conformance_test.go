package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	Join(ctx context.Context, p Peer) error
	Peer(ctx context.Context, channel, id string) (p Peer, ok bool, err error)
	Leave(ctx context.Context, channel, id string) error
	Have(ctx context.Context, channel, id string, digests []string) error
	Lookup(ctx context.Context, channel, digest string, asker Peer, q LookupQuery) (holders []Holder, elected bool, err error)
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

func (e *env) join(p Peer) { require.NoError(e.t, e.reg.Join(e.ctx, p)) }

func (e *env) have(p Peer, digests ...string) {
	require.NoError(e.t, e.reg.Have(e.ctx, p.Channel, p.ID, digests))
}

// lookup is a late Lookup: the asker is elected when nobody holds or fetches d.
func (e *env) lookup(d string, asker Peer, limit int) ([]Holder, bool) {
	hs, elected, err := e.reg.Lookup(e.ctx, asker.Channel, d, asker, LookupQuery{Limit: limit, Late: true})
	require.NoError(e.t, err)
	return hs, elected
}

// seek is a first Lookup: the asker is elected only as one of d's seeders in its group.
func (e *env) seek(d string, asker Peer) ([]Holder, bool) {
	hs, elected, err := e.reg.Lookup(e.ctx, asker.Channel, d, asker, LookupQuery{Limit: MaxLookupLimit})
	require.NoError(e.t, err)
	return hs, elected
}

func (e *env) activePeers() int {
	st, err := e.reg.Stats(e.ctx, e.ch)
	require.NoError(e.t, err)
	return st.ActivePeers
}

// states maps holder ID to state.
func states(hs []Holder) map[string]HolderState {
	out := make(map[string]HolderState, len(hs))
	for _, h := range hs {
		out[h.ID] = h.State
	}
	return out
}

// runConformance is the behaviour every Registry implementation must show.
func runConformance(t *testing.T, newReg func(t *testing.T, opts Options) Registry) {
	cases := []struct {
		name string
		run  func(e *env)
	}{
		{"HaveThenLookupFindsHolder", testHaveThenLookup},
		{"LookupNeverReturnsAsker", testLookupNeverReturnsAsker},
		{"FirstAskerIsElected", testFirstAskerElected},
		{"SeedersAreTopScoresPerGroup", testSeedersPerGroup},
		{"SeedersAreSticky", testSeedersSticky},
		{"SeederDefersToGroupHolder", testSeederDefers},
		{"LateAskerElectedOnlyWhenNobodyClaims", testLateElection},
		{"TwoSeedersPerGroup", testTwoSeeders},
		{"HaveReplacesFetching", testHaveReplacesFetching},
		{"LeechNeverElectedNorReturned", testLeech},
		{"LimitBoundsHolders", testLimit},
		{"LookupRanksByLocality", testLookupRanks},
		{"PeerExpiresAfterPeerTTL", testPeerExpiry},
		{"HoldingExpiresAfterHoldTTL", testHoldExpiry},
		{"FetchClaimExpiresAfterFetchTTL", testFetchExpiry},
		{"JoinRefreshesTTLAndInfo", testJoinRefreshes},
		{"LeaveRemovesAtOnce", testLeave},
		{"PeerReadsLivePeer", testPeerRead},
		{"Stats", testStats},
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

func testHaveThenLookup(e *env) {
	a, b := e.joined(1), e.joined(2)
	e.have(a, digest(1), digest(2))
	hs, elected := e.lookup(digest(2), b, 10)
	assert.False(e.t, elected)
	require.Len(e.t, hs, 1)
	assert.Equal(e.t, Holder{Peer: a, State: StateHave}, hs[0])
}

func testLookupNeverReturnsAsker(e *env) {
	a, b := e.joined(1), e.joined(2)
	e.have(a, digest(1))
	e.have(b, digest(1))
	hs, _ := e.lookup(digest(1), a, 10)
	assert.Equal(e.t, map[string]HolderState{b.ID: StateHave}, states(hs))
}

func testFirstAskerElected(e *env) {
	a, b := e.joined(1), e.joined(2)
	hs, elected := e.lookup(digest(1), a, 10)
	assert.True(e.t, elected)
	assert.Empty(e.t, hs)
	hs, elected = e.lookup(digest(1), b, 10)
	assert.False(e.t, elected)
	assert.Equal(e.t, map[string]HolderState{a.ID: StateFetching}, states(hs))
}

// groupPeers joins n peers of group, numbered from base, and returns them.
func (e *env) groupPeers(group string, base, n int) []Peer {
	var ps []Peer
	for i := range n {
		p := e.peer(base + i)
		p.Group = group
		e.join(p)
		ps = append(ps, p)
	}
	return ps
}

// topSeeder returns the peer of ps with the highest SeedScore for d.
func topSeeder(d string, ps []Peer) Peer {
	best := ps[0]
	for _, p := range ps[1:] {
		if SeedScore(d, p.ID) > SeedScore(d, best.ID) {
			best = p
		}
	}
	return best
}

func testSeedersPerGroup(e *env) {
	for n := range 5 { // several segments: each has its own seeder
		d := digest(100 + n)
		for _, group := range []string{"", "site-a"} {
			ps := e.groupPeers(group, 10+len(group)*100, 6)
			want := topSeeder(d, ps)
			var elected []string
			for i := len(ps) - 1; i >= 0; i-- { // ask in reverse order: order must not matter
				if _, ok := e.seek(d, ps[i]); ok {
					elected = append(elected, ps[i].ID)
				}
			}
			assert.Equal(e.t, []string{want.ID}, elected, "segment %d group %q", n, group)
			_, again := e.seek(d, want)
			assert.True(e.t, again, "a seeder asking again is still elected")
		}
	}
	leech := e.peer(999)
	leech.Leech = true
	e.join(leech)
	_, ok := e.seek(digest(1), leech)
	assert.False(e.t, ok, "a leech is never a seeder")
}

func testSeedersSticky(e *env) {
	d := digest(7)
	ps := e.groupPeers("", 1, 3)
	first := topSeeder(d, ps)
	_, ok := e.seek(d, ps[0]) // the first lookup chooses the seeders
	require.Equal(e.t, ps[0].ID == first.ID, ok)
	// Peers joining afterwards do not change them, even with a higher score.
	var later []Peer
	for i := 100; len(later) < 20; i++ {
		later = append(later, e.joined(i))
	}
	for _, p := range later {
		_, ok := e.seek(d, p)
		assert.False(e.t, ok, "peer %s joined after the seeders were chosen", p.ID)
	}
	_, ok = e.seek(d, first)
	assert.True(e.t, ok)
}

func testSeederDefers(e *env) {
	d := digest(8)
	ps := e.groupPeers("site-a", 1, 4)
	seeder := topSeeder(d, ps)
	var other Peer
	for _, p := range ps {
		if p.ID != seeder.ID {
			other = p
		}
	}
	e.have(other, d) // someone of the group already has it (e.g. a late fallback)
	hs, ok := e.seek(d, seeder)
	assert.False(e.t, ok, "no gateway fetch when the group already holds the segment")
	assert.Equal(e.t, map[string]HolderState{other.ID: StateHave}, states(hs))
	// A holder in another group does not stop the group's own seeder.
	d2 := digest(9)
	far := e.peer(50)
	far.Group = "site-b"
	e.join(far)
	e.have(far, d2)
	_, ok = e.seek(d2, topSeeder(d2, ps))
	assert.True(e.t, ok, "one copy per group")
}

func testLateElection(e *env) {
	d := digest(11)
	ps := e.groupPeers("", 1, 5)
	seeder := topSeeder(d, ps)
	var others []Peer
	for _, p := range ps {
		if p.ID != seeder.ID {
			others = append(others, p)
		}
	}
	_, ok := e.seek(d, others[0])
	assert.False(e.t, ok, "not a seeder")
	_, ok = e.lookup(d, others[0], 10)
	assert.True(e.t, ok, "late, and nobody claims it: elected")
	hs, ok := e.lookup(d, others[1], 10)
	assert.False(e.t, ok, "late, but someone fetches it")
	assert.Equal(e.t, map[string]HolderState{others[0].ID: StateFetching}, states(hs))
	hs, ok = e.seek(d, seeder)
	assert.False(e.t, ok, "with one seeder per group, the seeder joins the fetch under way")
	assert.Equal(e.t, map[string]HolderState{others[0].ID: StateFetching}, states(hs))
}

func testTwoSeeders(e *env) {
	e.reg = e.newReg(e.t, Options{Now: e.clock.Now, Seeders: 2})
	for n := range 5 {
		d := digest(200 + n)
		ps := e.groupPeers(fmt.Sprintf("site-%d", n), 300+10*n, 6)
		var elected []string
		for _, p := range ps {
			if _, ok := e.seek(d, p); ok {
				elected = append(elected, p.ID)
			}
		}
		assert.Len(e.t, elected, 2, "segment %d", n)
		assert.Contains(e.t, elected, topSeeder(d, ps).ID)
	}
}

func testHaveReplacesFetching(e *env) {
	a, b := e.joined(1), e.joined(2)
	_, elected := e.lookup(digest(1), a, 10)
	require.True(e.t, elected)
	e.have(a, digest(1))
	hs, elected := e.lookup(digest(1), b, 10)
	assert.False(e.t, elected)
	assert.Equal(e.t, map[string]HolderState{a.ID: StateHave}, states(hs))
}

func testLeech(e *env) {
	leech := e.peer(1)
	leech.Leech = true
	e.join(leech)
	b := e.joined(2)
	hs, elected := e.lookup(digest(1), leech, 10)
	assert.False(e.t, elected, "a leech is never elected")
	assert.Empty(e.t, hs)
	e.have(leech, digest(1))
	hs, elected = e.lookup(digest(1), b, 10)
	assert.Empty(e.t, hs, "a leech is never returned")
	assert.True(e.t, elected, "a leech's holding does not count")
}

func testLimit(e *env) {
	for i := 1; i <= MaxLookupLimit+10; i++ {
		e.have(e.joined(i), digest(1))
	}
	asker := e.joined(1000)
	for _, tc := range []struct{ limit, want int }{{3, 3}, {0, 1}, {1000, MaxLookupLimit}} {
		hs, elected := e.lookup(digest(1), asker, tc.limit)
		assert.False(e.t, elected)
		assert.Len(e.t, hs, tc.want, "limit %d", tc.limit)
	}
}

func testLookupRanks(e *env) {
	far, near := e.peer(1), e.peer(2)
	near.Group = "site-a"
	e.join(far)
	e.join(near)
	e.have(far, digest(1))
	e.have(near, digest(1))
	asker := e.peer(3)
	asker.Group = "site-a"
	hs, _ := e.lookup(digest(1), asker, 1)
	require.Len(e.t, hs, 1)
	assert.Equal(e.t, near.ID, hs[0].ID)
}

func testPeerExpiry(e *env) {
	a, b := e.joined(1), e.peer(2)
	e.have(a, digest(1))
	require.Equal(e.t, 1, e.activePeers())
	e.clock.Advance(DefaultPeerTTL - time.Millisecond)
	hs, _ := e.lookup(digest(1), b, 10)
	assert.Len(e.t, hs, 1, "live just before PeerTTL")
	e.clock.Advance(time.Millisecond)
	hs, elected := e.lookup(digest(1), b, 10)
	assert.Empty(e.t, hs, "expired at PeerTTL")
	assert.True(e.t, elected)
	assert.Equal(e.t, 0, e.activePeers())
}

func testHoldExpiry(e *env) {
	a, b := e.joined(1), e.peer(2)
	e.have(a, digest(1))
	for elapsed := time.Duration(0); elapsed < DefaultHoldTTL-time.Millisecond; {
		step := min(DefaultPeerTTL/2, DefaultHoldTTL-time.Millisecond-elapsed)
		e.clock.Advance(step)
		elapsed += step
		e.join(a) // keep the peer alive: only the holding may expire
	}
	hs, _ := e.lookup(digest(1), b, 10)
	assert.Len(e.t, hs, 1, "held just before HoldTTL")
	e.clock.Advance(time.Millisecond)
	e.join(a)
	hs, elected := e.lookup(digest(1), b, 10)
	assert.Empty(e.t, hs, "holding expired at HoldTTL")
	assert.True(e.t, elected)
}

func testFetchExpiry(e *env) {
	a, b, c := e.joined(1), e.joined(2), e.joined(3)
	_, elected := e.lookup(digest(1), a, 10)
	require.True(e.t, elected)
	e.clock.Advance(DefaultFetchTTL - time.Millisecond)
	hs, elected := e.lookup(digest(1), b, 10)
	assert.False(e.t, elected, "claim live just before FetchTTL")
	assert.Equal(e.t, map[string]HolderState{a.ID: StateFetching}, states(hs))
	e.clock.Advance(time.Millisecond)
	hs, elected = e.lookup(digest(1), c, 10)
	assert.True(e.t, elected, "claim expired at FetchTTL: the next asker is elected")
	assert.Empty(e.t, hs)
}

func testJoinRefreshes(e *env) {
	a, b := e.joined(1), e.peer(2)
	e.have(a, digest(1))
	e.clock.Advance(DefaultPeerTTL - time.Second)
	a.Addr = "198.51.100.7:9000"
	e.join(a)
	e.clock.Advance(DefaultPeerTTL - time.Second)
	hs, _ := e.lookup(digest(1), b, 10)
	require.Len(e.t, hs, 1, "Join extended the registration")
	assert.Equal(e.t, a.Addr, hs[0].Addr, "Join replaced the peer's info")
	assert.Equal(e.t, 1, e.activePeers())
}

func testLeave(e *env) {
	a, b, c := e.joined(1), e.joined(2), e.joined(3)
	e.have(a, digest(1))
	_, elected := e.lookup(digest(2), a, 10)
	require.True(e.t, elected)
	require.NoError(e.t, e.reg.Leave(e.ctx, e.ch, a.ID))
	assert.Equal(e.t, 2, e.activePeers())
	hs, elected := e.lookup(digest(1), b, 10)
	assert.Empty(e.t, hs)
	assert.True(e.t, elected)
	_, elected = e.lookup(digest(2), b, 10)
	assert.True(e.t, elected, "Leave released the fetch claim")
	e.join(a) // rejoining does not bring back holdings dropped by Leave
	hs, _ = e.lookup(digest(1), c, 10)
	assert.Equal(e.t, map[string]HolderState{b.ID: StateFetching}, states(hs))
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
	e.have(a, digest(1))
	require.NoError(e.t, e.reg.AddStats(e.ctx, e.ch, Counters{BytesUploaded: 9}))
	other := Peer{ID: peerID(2), Channel: freshChannel(e.t), Addr: "192.0.2.9:7000"}
	e.join(other)
	hs, elected := e.lookup(digest(1), other, 10)
	assert.Empty(e.t, hs)
	assert.True(e.t, elected)
	st, err := e.reg.Stats(e.ctx, other.Channel)
	require.NoError(e.t, err)
	assert.Equal(e.t, ChannelStats{ActivePeers: 1}, st)
	hs, _ = e.lookup(digest(1), e.peer(3), 10)
	assert.Equal(e.t, map[string]HolderState{a.ID: StateHave}, states(hs), "the other channel's claim is not here")
}

func testBadRequest(e *env) {
	ctx, ch, id, d := e.ctx, e.ch, peerID(1), digest(1)
	tooMany := make([]string, MaxHaveDigests+1)
	for i := range tooMany {
		tooMany[i] = digest(i)
	}
	lookup := func(ch, d, id string) error {
		_, _, err := e.reg.Lookup(ctx, ch, d, Peer{ID: id, Channel: ch}, LookupQuery{Limit: 10})
		return err
	}
	stats := func(ch string) error {
		_, err := e.reg.Stats(ctx, ch)
		return err
	}
	for name, err := range map[string]error{
		"join bad channel":  e.reg.Join(ctx, Peer{ID: id, Channel: "no spaces"}),
		"join bad id":       e.reg.Join(ctx, Peer{ID: "ABC", Channel: ch}),
		"leave bad id":      e.reg.Leave(ctx, ch, "x"),
		"leave bad channel": e.reg.Leave(ctx, "{x}", id),
		"have no digests":   e.reg.Have(ctx, ch, id, nil),
		"have too many":     e.reg.Have(ctx, ch, id, tooMany),
		"have bad digest":   e.reg.Have(ctx, ch, id, []string{d, "abc"}),
		"have bad id":       e.reg.Have(ctx, ch, "x", []string{d}),
		"lookup bad digest": lookup(ch, "ABC", id),
		"lookup bad asker":  lookup(ch, d, ""),
		"lookup bad chan":   lookup("", d, id),
		"addstats bad chan": e.reg.AddStats(ctx, "a:b", Counters{BytesUploaded: 1}),
		"stats bad chan":    stats(""),
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
	list := func(rendition string, n int, disc bool, min uint64) Listing {
		l, err := e.reg.List(e.ctx, e.ch, rendition, ListClaim{Digest: digest(n), Disc: disc, MinSeq: min})
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
		l, err := other.List(e.ctx, e.ch, "", ListClaim{Digest: digest(2)})
		require.NoError(e.t, err)
		assert.Equal(e.t, Listing{Seq: 41}, l, "another gateway on the same store sees the same listing")
	}

	for n := range MaxListings { // the oldest listings are forgotten, the numbering goes on
		list("r2", 1000+n, false, 0)
	}
	assert.Equal(e.t, Listing{Seq: MaxListings}, list("r2", 5000, false, 0))
	assert.Equal(e.t, Listing{Seq: MaxListings + 1}, list("r2", 1000, false, 0), "forgotten: listed anew")
	assert.Equal(e.t, Listing{Seq: MaxListings - 1}, list("r2", 1000+MaxListings-1, false, 0), "still known")

	maxAge := func(n int, age time.Duration) Listing {
		l, err := e.reg.List(e.ctx, e.ch, "r3", ListClaim{Digest: digest(n), MaxAge: age})
		require.NoError(e.t, err)
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
		l, err := e.reg.List(e.ctx, e.ch, "r4", ListClaim{Digest: digest(n), MaxBehind: by})
		require.NoError(e.t, err)
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
	a.Group = "site-a"
	_, ok, err := e.reg.Peer(e.ctx, e.ch, a.ID)
	require.NoError(e.t, err)
	assert.False(e.t, ok, "not joined")
	e.join(a)
	got, ok, err := e.reg.Peer(e.ctx, e.ch, a.ID)
	require.NoError(e.t, err)
	assert.True(e.t, ok)
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
