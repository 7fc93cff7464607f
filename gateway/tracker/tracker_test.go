package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// fixture is a tracker on an in-memory registry, served over HTTP, and running.
type fixture struct {
	t   *testing.T
	tr  *Tracker
	reg *swarm.Memory
	url string
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	return newFixtureWith(t, cfg, nil)
}

// newFixtureWith is newFixture with the tracker on wrap(the registry) when wrap is set.
func newFixtureWith(t *testing.T, cfg Config, wrap func(*swarm.Memory) Registry) *fixture {
	t.Helper()
	reg := swarm.NewMemory(swarm.Options{})
	var on Registry = reg
	if wrap != nil {
		on = wrap(reg)
	}
	f := newFixtureOn(t, cfg, on)
	f.reg = reg
	return f
}

// newFixtureOn is a fixture whose tracker runs on reg (its reg field is nil): the
// trackers of two fixtures on one Redis are a fleet.
func newFixtureOn(t *testing.T, cfg Config, reg Registry) *fixture {
	t.Helper()
	if cfg.Served == nil {
		cfg.Served = func(ch string) bool { return ch == "tv" }
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.PeerAddrs == swarm.AddrPublic {
		cfg.PeerAddrs = swarm.AddrLoopback // the fixture's peers are on this machine
	}
	tr := New(cfg, reg)
	e := echo.New()
	tr.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = tr.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{t: t, tr: tr, url: srv.URL}
}

// stream is an open event stream, read by a goroutine into channels by event name.
type stream struct {
	resp   *http.Response
	hello  swarm.Hello
	plans  chan swarm.Plan
	segs   chan swarm.SegmentEvent
	sigs   chan swarm.SignalEvent
	closed chan struct{}
}

// open opens an event stream for sub (with credentials, when id is set) and waits for its
// hello; status is the response's when it is not 200 (and then the stream is nil).
func (f *fixture) open(sub swarm.Subscription, id, token string) (*stream, int) {
	f.t.Helper()
	return f.openFrom(sub, id, token, "")
}

// openFrom is open from the public address ip (X-Real-IP: the fixture's router, unlike
// the gateway's, takes it), or from 127.0.0.1 when ip is empty.
func (f *fixture) openFrom(sub swarm.Subscription, id, token, ip string) (*stream, int) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, f.url+swarm.PathEvents+"?"+sub.Query().Encode(), nil)
	require.NoError(f.t, err)
	if ip != "" {
		req.Header.Set(echo.HeaderXRealIP, ip)
	}
	if id != "" {
		req.Header.Set("Authorization", swarm.FormatAuth(id, token))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	s := &stream{resp: resp, plans: make(chan swarm.Plan, 64), segs: make(chan swarm.SegmentEvent, 64),
		sigs: make(chan swarm.SignalEvent, 64), closed: make(chan struct{})}
	f.t.Cleanup(func() { resp.Body.Close() })
	r := swarm.NewEventReader(resp.Body)
	ev, err := r.Next()
	require.NoError(f.t, err)
	require.Equal(f.t, swarm.EventHello, ev.Name)
	require.NoError(f.t, json.Unmarshal(ev.Data, &s.hello))
	go func() {
		defer close(s.closed)
		for {
			ev, err := r.Next()
			if err != nil {
				return
			}
			switch ev.Name {
			case swarm.EventPlan:
				var p swarm.Plan
				if json.Unmarshal(ev.Data, &p) == nil {
					s.plans <- p
				}
			case swarm.EventSegment:
				var se swarm.SegmentEvent
				if json.Unmarshal(ev.Data, &se) == nil {
					s.segs <- se
				}
			case swarm.EventSignal:
				var se swarm.SignalEvent
				if json.Unmarshal(ev.Data, &se) == nil {
					s.sigs <- se
				}
			}
		}
	}()
	return s, http.StatusOK
}

// plan waits for the stream's next plan.
func (s *stream) plan(t *testing.T) swarm.Plan {
	t.Helper()
	select {
	case p := <-s.plans:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no plan within 5 s")
		return swarm.Plan{}
	}
}

// report posts a report and returns the status.
func (f *fixture) report(req swarm.ReportRequest) int {
	f.t.Helper()
	body, err := json.Marshal(req)
	require.NoError(f.t, err)
	resp, err := http.Post(f.url+swarm.PathReport, "application/json", bytes.NewReader(body))
	require.NoError(f.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func sub(port int) swarm.Subscription {
	return swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: fmt.Sprintf(":%d", port)}
}

// TestPlanFromCacheAfterThePlanner: a stream the planner sent a plan already (its round ran
// between the stream's registration and its plan from the cache) gets no other from the
// cache: it would repeat the planner's, or put a plan of an older roster after it (it made
// TestStreamGivesHelloPlansAndSegments fail once in a few hundred runs).
func TestPlanFromCacheAfterThePlanner(t *testing.T) {
	f := newFixture(t, Config{})
	h := f.tr.hub
	me := swarm.Peer{ID: strings.Repeat("1", 32), Channel: "tv", Renditions: []string{"r0"}}
	older := swarm.Peer{ID: strings.Repeat("2", 32), Channel: "tv", Renditions: []string{"r0"}}
	s := newSubscriber(me, map[string]int{"r0": 0})
	h.mu.Lock()
	s.plans["r0"] = swarm.NewRoster([]swarm.Member{{Peer: me}}, 1).Plan("r0", 0, false) // the planner's
	h.rosters[cellOf(me, "r0")] = []swarm.Member{{Peer: older, Slot: 1}}                // read before it
	h.mu.Unlock()
	h.planFromCache(s)
	assert.Empty(t, s.out, "no plan from the cache after the planner's")

	fresh := newSubscriber(older, map[string]int{"r0": 1})
	h.planFromCache(fresh)
	assert.Len(t, fresh.out, 1, "a stream without a plan gets one from the cache")
}

// TestPlanFromCacheSeesEarlierJoiners: a joiner's plan from the cache names a member that
// joined since the planner last read the roster, as the planner's own plan will: one plan
// per joiner, not one from an ancestor and then a corrected one.
func TestPlanFromCacheSeesEarlierJoiners(t *testing.T) {
	f := newFixture(t, Config{})
	h := f.tr.hub
	peer := func(n int) swarm.Peer {
		return swarm.Peer{ID: fmt.Sprintf("%032x", n+1), Channel: "tv", Renditions: []string{"r0"}}
	}
	var read []swarm.Member
	for slot := range 4 {
		read = append(read, swarm.Member{Peer: peer(slot), Slot: slot})
	}
	h.mu.Lock()
	h.rosters[cellOf(peer(0), "r0")] = read // the planner's last read: slots 0-3
	h.mu.Unlock()
	four := newSubscriber(peer(4), map[string]int{"r0": 4})
	h.planFromCache(four)
	five := newSubscriber(peer(5), map[string]int{"r0": 5})
	h.planFromCache(five)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Contains(t, five.plans, "r0")
	assert.Equal(t, peer(4).ID, five.plans["r0"].Stripes[0].Sources[0].ID, "slot 5's stripe-0 parent is slot 4, which joined since the read")
	want := swarm.NewRoster(append(read, swarm.Member{Peer: peer(4), Slot: 4}, swarm.Member{Peer: peer(5), Slot: 5}), 1).Plan("r0", 5, false)
	assert.True(t, want.Equal(five.plans["r0"]), "the plan the planner will compute")
}

func TestStreamGivesHelloPlansAndSegments(t *testing.T) {
	f := newFixture(t, Config{})
	a, code := f.open(sub(7001), "", "")
	require.Equal(t, http.StatusOK, code)
	assert.True(t, swarm.ValidPeerID(a.hello.PeerID))
	assert.Equal(t, int64(10_000), a.hello.ReportMS)
	pa := a.plan(t)
	assert.Equal(t, "r0", pa.Rendition)
	assert.Equal(t, 0, pa.Slot)
	for _, sp := range pa.Stripes {
		assert.True(t, sp.Root, "alone in its cell: it fetches every stripe from the gateway")
	}

	b, _ := f.open(sub(7002), "", "")
	pb := b.plan(t)
	assert.Equal(t, 1, pb.Slot)
	assert.True(t, pb.Stripes[1].Root, "slot 1 is the root of stripe 1")
	for _, s := range []int{0, 2, 3} {
		require.Len(t, pb.Stripes[s].Sources, 1, "stripe %d", s)
		assert.Equal(t, a.hello.PeerID, pb.Stripes[s].Sources[0].ID)
		assert.Equal(t, "127.0.0.1:7001", pb.Stripes[s].Sources[0].Addr, "an unspecified host is the observed address")
	}
	pa = a.plan(t) // b joined: a gets stripe 1 from it now
	assert.False(t, pa.Stripes[1].Root, "%+v", pa)
	assert.Equal(t, b.hello.PeerID, pa.Stripes[1].Sources[0].ID)

	ev := swarm.SegmentEvent{Rendition: "r0", Seq: 7, Name: "7-abc.ts", Digest: strings.Repeat("a", 64), Size: 10, DurationMS: 2000}
	f.tr.Published("tv", ev)
	f.tr.Published("tv", swarm.SegmentEvent{Rendition: "r1", Seq: 8})
	for _, s := range []*stream{a, b} {
		select {
		case got := <-s.segs:
			assert.Equal(t, ev, got, "only the rendition it plays")
		case <-time.After(5 * time.Second):
			t.Fatal("no segment event")
		}
	}
}

func TestResumeKeepsIDAndSlot(t *testing.T) {
	f := newFixture(t, Config{})
	a, _ := f.open(sub(7001), "", "")
	a.plan(t)
	a.resp.Body.Close()
	<-a.closed
	again, code := f.open(sub(7001), a.hello.PeerID, a.hello.Token)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, a.hello.PeerID, again.hello.PeerID, "the token resumes the peer")
	assert.Equal(t, 0, again.plan(t).Slot)

	other, _ := f.open(sub(7002), a.hello.PeerID, "1-forged")
	assert.NotEqual(t, a.hello.PeerID, other.hello.PeerID, "a forged token gets a new peer, not the victim's")

	_, code = f.open(swarm.Subscription{Channel: "radio", Addr: ":1"}, "", "")
	assert.Equal(t, http.StatusNotFound, code)
	_, code = f.open(swarm.Subscription{Channel: "tv", Addr: "8.8.8.8:1"}, "", "")
	assert.Equal(t, http.StatusBadRequest, code, "a public address other than its own")
}

func TestReportAndLeave(t *testing.T) {
	f := newFixture(t, Config{})
	f.list(8, 1000, 2000)
	a, _ := f.open(sub(7001), "", "")
	a.plan(t)
	id, tok := a.hello.PeerID, a.hello.Token
	assert.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: id, Token: tok, Channel: "tv",
		Stats: swarm.Counters{BytesFromPeers: 300, BytesFromGateway: 100}}))
	st, err := f.reg.Stats(t.Context(), "tv")
	require.NoError(t, err)
	assert.Equal(t, int64(300), st.BytesFromPeers)
	assert.Equal(t, 1, st.ActivePeers)

	assert.Equal(t, http.StatusUnauthorized, f.report(swarm.ReportRequest{PeerID: id, Token: "1-x", Channel: "tv"}))
	assert.Equal(t, http.StatusBadRequest, f.report(swarm.ReportRequest{PeerID: id, Token: tok, Channel: "tv",
		Stats: swarm.Counters{PeersBanned: 1}}), "a counter only gateways keep")

	assert.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: id, Token: tok, Channel: "tv", Leave: true}))
	select {
	case <-a.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stays open after a leave")
	}
	st, err = f.reg.Stats(t.Context(), "tv")
	require.NoError(t, err)
	assert.Zero(t, st.ActivePeers)
}

// TestReportsNeedEvidence: reports ban a peer only when reporters on two addresses this
// gateway's plans sent to it say so; reports of a peer a reporter was never sent to are
// ignored.
func TestReportsNeedEvidence(t *testing.T) {
	f := newFixture(t, Config{})
	victim, _ := f.open(sub(7001), "", "")
	victim.plan(t)
	var others []*stream
	for i := range 2 { // honest reporters on two hosts (127/8 is loopback)
		s, _ := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: fmt.Sprintf("127.0.0.%d:%d", 2+i, 7002+i)}, "", "")
		p := s.plan(t)
		require.Equal(t, victim.hello.PeerID, p.Stripes[0].Sources[0].ID)
		others = append(others, s)
	}
	// A peer in another group (cell) was never sent to the victim.
	stranger, _ := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: ":7009", Group: "far"}, "", "")
	stranger.plan(t)
	accuse := func(s *stream) {
		require.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: s.hello.PeerID, Token: s.hello.Token,
			Channel: "tv", Banned: []string{victim.hello.PeerID}}))
	}
	accuse(stranger)
	accuse(others[0])
	_, ok, err := f.reg.Peer(t.Context(), "tv", victim.hello.PeerID)
	require.NoError(t, err)
	assert.True(t, ok, "one reporter with evidence, one without: no ban")
	accuse(others[1])
	_, ok, err = f.reg.Peer(t.Context(), "tv", victim.hello.PeerID)
	require.NoError(t, err)
	assert.False(t, ok, "two reporters it fed: banned")
	_, code := f.open(sub(7001), "", "")
	assert.Equal(t, http.StatusForbidden, code, "its address is refused as an uploader")
	leech, code := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Leech: true}, "", "")
	require.Equal(t, http.StatusOK, code, "but may still download")
	assert.True(t, leech.plan(t).Leech)
}

// TestOneAddressManyPeers: a thousand proxies behind one address join and report without a
// refusal; a peer that calls too often, and joins beyond the per-address rate, are refused
// and counted.
func TestOneAddressManyPeers(t *testing.T) {
	clock := struct {
		sync.Mutex
		now time.Time
	}{now: time.Unix(1_000_000, 0)}
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	f := newFixture(t, Config{Now: now, JoinRate: 100, PeersPerAddress: 1000})
	var ids, toks []string
	for i := range 1000 {
		q := sub(10000 + i).Query()
		resp, err := http.Get(f.url + swarm.PathEvents + "?" + q.Encode())
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "join %d", i)
		var hello swarm.Hello
		ev, err := swarm.NewEventReader(resp.Body).Next()
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(ev.Data, &hello))
		ids, toks = append(ids, hello.PeerID), append(toks, hello.Token)
		t.Cleanup(func() { resp.Body.Close() })
	}
	for i := range ids {
		require.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: ids[i], Token: toks[i], Channel: "tv"}), "report %d", i)
	}
	assert.Equal(t, [numReasons]int64{}, f.tr.Snapshot().Refused, "nothing refused")

	codes := map[int]int{}
	for range 20 {
		codes[f.report(swarm.ReportRequest{PeerID: ids[0], Token: toks[0], Channel: "tv"})]++
	}
	assert.Positive(t, codes[http.StatusTooManyRequests], "one peer calling 20 times at once")
	resp, err := http.Get(f.url + swarm.PathEvents + "?" + sub(9).Query().Encode())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the 1,001st join in the same instant, past the burst")
	st := f.tr.Snapshot()
	assert.Equal(t, int64(codes[http.StatusTooManyRequests]), st.Refused[RefusedPeer])
	assert.Equal(t, int64(1), st.Refused[RefusedJoins])
	assert.Equal(t, 1000, st.Streams)
	f.tr.flush(t.Context())
	stats, err := f.reg.Stats(t.Context(), "tv")
	require.NoError(t, err)
	assert.Equal(t, st.Refused[RefusedPeer]+1, stats.TrackerRefused, "refusals reach the channel's stats")
	assert.Equal(t, 1000, stats.ActivePeers)
}

// TestStreamEndKeepsPlaceForGrace: a peer whose stream ends stays registered, in its slot,
// for leaveGrace; one that comes back within it keeps its place; one that does not leaves.
func TestStreamEndKeepsPlaceForGrace(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := newFixture(t, Config{Now: clock})
	listed := func(id string) bool {
		ms, err := f.reg.Roster(t.Context(), "tv", "r0", "")
		require.NoError(t, err)
		for _, m := range ms {
			if m.ID == id {
				return true
			}
		}
		return false
	}
	closed := func(s *stream, streams int) {
		s.resp.Body.Close()
		<-s.closed
		for deadline := time.Now().Add(5 * time.Second); f.tr.Snapshot().Streams != streams; time.Sleep(5 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "the gateway never noticed the stream end")
		}
	}
	a, _ := f.open(sub(1), "", "")
	b, _ := f.open(sub(2), "", "")
	slot := a.plan(t).Slot
	closed(a, 1)
	f.tr.departures(t.Context())
	assert.True(t, listed(a.hello.PeerID), "gone at once")

	advance(leaveGrace / 2)
	again, code := f.open(sub(1), a.hello.PeerID, a.hello.Token)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, slot, again.plan(t).Slot, "back within the grace: the same slot")
	advance(leaveGrace)
	f.tr.departures(t.Context())
	assert.True(t, listed(a.hello.PeerID), "back: it stays")

	closed(b, 1)
	advance(leaveGrace - time.Second)
	f.tr.departures(t.Context())
	assert.True(t, listed(b.hello.PeerID), "within the grace")
	advance(time.Second)
	f.tr.departures(t.Context())
	assert.False(t, listed(b.hello.PeerID), "the grace is over")
}

// TestTrackerRejectsBadInput: an oversized report is 413, a malformed one 400, one for a
// channel the gateway does not serve 404; a stream with a malformed subscription is 400.
func TestTrackerRejectsBadInput(t *testing.T) {
	f := newFixture(t, Config{})
	post := func(body string) int {
		resp, err := http.Post(f.url+swarm.PathReport, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusRequestEntityTooLarge, post(`{"peer_id":"`+strings.Repeat("a", swarm.MaxRequestBytes)+`"}`))
	assert.Equal(t, http.StatusBadRequest, post(`{"peer_id":`))
	assert.Equal(t, http.StatusBadRequest, post(`{"peer_id":"not hex","channel":"tv","token":"x"}`))
	a, _ := f.open(sub(1), "", "")
	assert.Equal(t, http.StatusNotFound, f.report(swarm.ReportRequest{PeerID: a.hello.PeerID, Token: a.hello.Token, Channel: "radio"}))
	for _, q := range []string{"", "channel=tv&rendition=" + strings.Repeat("r", 300), "channel=tv&addr=nohost"} {
		resp, err := http.Get(f.url + swarm.PathEvents + "?" + q)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "query %q", q)
	}
}

// TestJoinerPlannedFromCachedRoster: a joiner of a cell this gateway planned gets its plan
// queued with its hello, from the cached roster with the joiner added, before any planner
// round or registry read.
func TestJoinerPlannedFromCachedRoster(t *testing.T) {
	f := newFixture(t, Config{})
	a, _ := f.open(sub(1), "", "")
	require.Equal(t, 0, a.plan(t).Slot)
	joiner := newSubscriber(swarm.Peer{ID: strings.Repeat("b", 32), Channel: "tv", Addr: "127.0.0.1:2", Renditions: []string{"r0"}},
		map[string]int{"r0": 1})
	f.tr.hub.planFromCache(joiner)
	require.Len(t, joiner.out, 1, "a plan queued at once")
	ev, err := swarm.NewEventReader(bytes.NewReader(<-joiner.out)).Next()
	require.NoError(t, err)
	require.Equal(t, swarm.EventPlan, ev.Name)
	var p swarm.Plan
	require.NoError(t, json.Unmarshal(ev.Data, &p))
	assert.Equal(t, 1, p.Slot)
	assert.True(t, p.Stripes[1].Root, "slot 1 roots stripe 1")
	require.NotEmpty(t, p.Stripes[0].Sources)
	assert.Equal(t, a.hello.PeerID, p.Stripes[0].Sources[0].ID, "and gets stripe 0 from the member in slot 0")

	cold := newSubscriber(swarm.Peer{ID: strings.Repeat("c", 32), Channel: "tv", Addr: "127.0.0.1:3", Renditions: []string{"r9"}},
		map[string]int{"r9": 0})
	f.tr.hub.planFromCache(cold)
	assert.Empty(t, cold.out, "a cell never planned here waits for the planner")
}

// TestAddressPolicy: a peer cannot aim the swarm at a viewer's own machine, LAN, a cloud
// metadata service or a third party; what the gateway admits it announces in Hello, so
// proxies apply the same policy before they dial.
func TestAddressPolicy(t *testing.T) {
	const me = "203.0.113.7"
	cases := []struct {
		claimed string
		policy  swarm.AddrPolicy
		want    string // "" when refused
	}{
		{":7000", swarm.AddrPublic, me + ":7000"},
		{"0.0.0.0:7000", swarm.AddrPublic, me + ":7000"},
		{me + ":7000", swarm.AddrPublic, me + ":7000"},
		{"198.51.100.9:7000", swarm.AddrPublic, ""}, // a third party
		{"127.0.0.1:6379", swarm.AddrPublic, ""},    // the viewer's own Redis
		{"127.0.0.1:6379", swarm.AddrPrivate, ""},
		{"127.0.0.1:7000", swarm.AddrLoopback, "127.0.0.1:7000"},
		{"192.168.1.20:7000", swarm.AddrPublic, ""},
		{"192.168.1.20:7000", swarm.AddrPrivate, "192.168.1.20:7000"},
		{"[fd00::5]:7000", swarm.AddrPrivate, "[fd00::5]:7000"},
		{"169.254.169.254:80", swarm.AddrLoopback, ""}, // cloud metadata, never
		{"[fe80::1]:7000", swarm.AddrLoopback, ""},
		{"224.0.0.1:7000", swarm.AddrLoopback, ""},
		{"[::ffff:127.0.0.1]:7000", swarm.AddrLoopback, "127.0.0.1:7000"},
		{"localhost:7000", swarm.AddrLoopback, ""}, // names are not resolved
		{"127.0.0.1:0", swarm.AddrLoopback, ""},
		{"127.0.0.1:70000", swarm.AddrLoopback, ""},
	}
	for _, c := range cases {
		got, err := advertisedAddr(c.claimed, me, c.policy)
		if c.want == "" {
			assert.ErrorIs(t, err, swarm.ErrBadRequest, "%s under %s", c.claimed, c.policy)
			continue
		}
		if assert.NoError(t, err, "%s under %s", c.claimed, c.policy) {
			assert.Equal(t, c.want, got, "%s under %s", c.claimed, c.policy)
		}
	}
	// A loopback peer under a private policy: refused with a message that names the flag.
	// Over the wire, so that the policy reaches the handler; the hello says the policy.
	f := newFixture(t, Config{PeerAddrs: swarm.AddrPrivate, AllowOrigins: []string{"https://player.example"}})
	_, code := f.open(sub(7000), "", "")
	assert.Equal(t, http.StatusBadRequest, code, "127.0.0.1 is not a neighbour under private")
	leech, code := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Leech: true}, "", "")
	require.Equal(t, http.StatusOK, code, "a leech advertises nothing and may join")
	assert.Equal(t, "private", leech.hello.AddrPolicy)
	assert.Equal(t, []string{"https://player.example"}, leech.hello.AllowOrigins, "the broadcaster's player pages, announced")
	_, err := advertisedAddr("127.0.0.1:7000", me, swarm.AddrPublic)
	assert.ErrorContains(t, err, "--peer-addrs public")
}

// TestSlowReportBodyTimedOut: a report body trickled in does not hold its connection past
// the report read timeout.
func TestSlowReportBodyTimedOut(t *testing.T) {
	f := newFixture(t, Config{ReportReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", swarm.PathReport)
	require.NoError(t, err)
	ended := make(chan struct{})
	go func() { // trickle a byte every 100 ms, for up to 5 s
		defer close(ended)
		for range 50 {
			time.Sleep(100 * time.Millisecond) // the trickle itself, not synchronisation
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, _ = io.ReadAll(conn) // the answer, then the close
	assert.Less(t, time.Since(start), 3*time.Second, "the connection is released well before the trickle ends")
	conn.Close()
	<-ended
}

// TestIdentitiesPerAddress: one address holds at most PeersPerAddress identities at once;
// more are refused (429, reason identities) and counted; one that ends frees its place, and
// a peer resuming its own identity is not a new one.
func TestIdentitiesPerAddress(t *testing.T) {
	f := newFixture(t, Config{PeersPerAddress: 3})
	var open []*stream
	for i := range 3 {
		s, code := f.open(sub(7001+i), "", "")
		require.Equal(t, http.StatusOK, code, "identity %d", i)
		open = append(open, s)
	}
	_, code := f.open(sub(7009), "", "")
	assert.Equal(t, http.StatusTooManyRequests, code, "a 4th identity from one address")
	assert.Equal(t, int64(1), f.tr.Snapshot().Refused[RefusedIdentities])
	again, code := f.open(sub(7001), open[0].hello.PeerID, open[0].hello.Token)
	require.Equal(t, http.StatusOK, code, "a peer resuming its own identity")
	<-open[0].closed // replaced by its resumed stream
	again.resp.Body.Close()
	for range 100 { // the closed stream's place frees as its handler returns
		if _, code = f.open(sub(7010), "", ""); code == http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, http.StatusOK, code, "a place freed by a stream that ended")
}

// TestTwoIdentitiesOneAddressCannotBan: two identities a client made on one address, both
// sent to an honest uploader by their plans, report it: one address is one reporter, no ban.
func TestTwoIdentitiesOneAddressCannotBan(t *testing.T) {
	f := newFixture(t, Config{})
	victim, _ := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: "127.0.0.2:7001"}, "", "")
	victim.plan(t)
	for i := range 2 {
		s, _ := f.open(sub(7002+i), "", "")
		require.Equal(t, victim.hello.PeerID, s.plan(t).Stripes[0].Sources[0].ID)
		require.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: s.hello.PeerID, Token: s.hello.Token,
			Channel: "tv", Banned: []string{victim.hello.PeerID}}))
	}
	_, ok, err := f.reg.Peer(t.Context(), "tv", victim.hello.PeerID)
	require.NoError(t, err)
	assert.True(t, ok, "two identities of one address: not banned")
	_, code := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: "127.0.0.2:7001"}, "", "")
	assert.Equal(t, http.StatusOK, code, "its address is not refused")
}

// failingStats is a registry whose stats are down and everything else works.
type failingStats struct{ *swarm.Memory }

func (failingStats) AddStats(context.Context, string, swarm.Counters) error {
	return swarm.ErrUnavailable
}

// TestStatsFailureDoesNotBlockLeave: a report whose stats cannot be recorded still leaves
// (the proxy is told 503, to send its deltas again).
func TestStatsFailureDoesNotBlockLeave(t *testing.T) {
	f := newFixtureWith(t, Config{}, func(m *swarm.Memory) Registry { return failingStats{m} })
	f.list(8, 1000, 2000)
	a, _ := f.open(sub(7001), "", "")
	a.plan(t)
	assert.Equal(t, http.StatusServiceUnavailable, f.report(swarm.ReportRequest{PeerID: a.hello.PeerID, Token: a.hello.Token,
		Channel: "tv", Stats: swarm.Counters{BytesFromGateway: 100}, Leave: true}))
	<-a.closed
	_, ok, err := f.reg.Peer(t.Context(), "tv", a.hello.PeerID)
	require.NoError(t, err)
	assert.False(t, ok, "left although its stats were not recorded")
}

// list has the tracker told of n segments of r0 of size bytes and durMS each.
func (f *fixture) list(n int, size, durMS int64) {
	for i := range n {
		f.tr.Published("tv", swarm.SegmentEvent{Rendition: "r0", Seq: uint64(i), Size: size, DurationMS: durMS})
	}
}

// TestReportsBounded: deltas over what a peer could have played (one window of listed
// segments and two report intervals at the listed rate, with slack) or uploaded (a small
// multiple) are cut, not refused, and counted; near int64's max too.
func TestReportsBounded(t *testing.T) {
	f := newFixture(t, Config{})
	f.list(8, 1000, 2000) // 500 B/s, a window of 8,000 B
	a, _ := f.open(sub(7001), "", "")
	a.plan(t)
	const huge = 1 << 62
	assert.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: a.hello.PeerID, Token: a.hello.Token, Channel: "tv",
		Stats: swarm.Counters{BytesFromPeers: huge, BytesFromGateway: huge, BytesUploaded: huge, SegmentsFromPeers: huge,
			Stalls: huge, Startups: huge, StartupMillis: huge, NeighbourFailures: huge},
		Renditions: map[string]swarm.Counters{"r0": {BytesFromPeers: huge}}, FedBy: map[string]int64{"": huge}}))
	st, err := f.reg.Stats(t.Context(), "tv")
	require.NoError(t, err)
	limit := int64(1.25 * (8000 + 500*20)) // slack × (window + two 10 s intervals)
	assert.LessOrEqual(t, st.BytesFromPeers+st.BytesFromGateway, limit)
	assert.Positive(t, st.BytesFromPeers)
	assert.LessOrEqual(t, st.BytesUploaded, 8*limit)
	assert.LessOrEqual(t, st.SegmentsFromPeers, int64(24))
	assert.LessOrEqual(t, st.Stalls, st.SegmentsFromPeers)
	assert.Equal(t, int64(1), f.tr.Snapshot().Clamped)
	// An honest report within the listing passes untouched.
	b, _ := f.open(sub(7002), "", "")
	b.plan(t)
	honest := swarm.Counters{BytesFromPeers: 6000, BytesFromGateway: 2000, BytesUploaded: 7000, SegmentsFromPeers: 6, SegmentsFromGateway: 2, Startups: 1, StartupMillis: 900}
	assert.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: b.hello.PeerID, Token: b.hello.Token, Channel: "tv", Stats: honest}))
	assert.Equal(t, int64(1), f.tr.Snapshot().Clamped, "an honest report is not cut")
	st2, err := f.reg.Stats(t.Context(), "tv")
	require.NoError(t, err)
	assert.Equal(t, st.BytesFromPeers+6000, st2.BytesFromPeers)
}
