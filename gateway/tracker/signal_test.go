package tracker

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // coturn's REST credential
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/swarm"
)

// signal posts a signal from s to peer to and returns the status.
func (f *fixture) signal(s *stream, to, session, kind, sdp string) int {
	f.t.Helper()
	body, err := json.Marshal(swarm.SignalRequest{PeerID: s.hello.PeerID, Channel: "tv", Token: s.hello.Token, To: to,
		Signal: swarm.Signal{Session: session, Kind: kind, SDP: sdp}})
	require.NoError(f.t, err)
	resp, err := http.Post(f.url+swarm.PathSignal, "application/json", bytes.NewReader(body))
	require.NoError(f.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// nextSignal waits for s's next signal event.
func (s *stream) nextSignal(t *testing.T) swarm.SignalEvent {
	t.Helper()
	select {
	case ev := <-s.sigs:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no signal within 5 s")
		return swarm.SignalEvent{}
	}
}

// TestSignalsOnlyBetweenPairedPeers: an offer reaches a source the dialer's plans named, its
// answer reaches the dialer once; a peer the plans never paired with the recipient, a
// second answer, an answer to no offer and a forged token get nothing through.
func TestSignalsOnlyBetweenPairedPeers(t *testing.T) {
	f := newFixture(t, Config{})
	a, _ := f.open(sub(7001), "", "")
	a.plan(t)
	b, _ := f.open(sub(7002), "", "")
	require.Equal(t, a.hello.PeerID, b.plan(t).Stripes[0].Sources[0].ID)
	stranger, _ := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: ":7009", Group: "far"}, "", "")
	stranger.plan(t)
	session := strings.Repeat("5e", 16)

	assert.Equal(t, http.StatusForbidden, f.signal(stranger, a.hello.PeerID, session, swarm.SignalOffer, "v=0 stranger"),
		"no plan of the stranger's names a")
	assert.Equal(t, http.StatusForbidden, f.signal(a, b.hello.PeerID, session, swarm.SignalAnswer, "v=0 early"),
		"an answer to no offer")
	require.Equal(t, http.StatusAccepted, f.signal(b, a.hello.PeerID, session, swarm.SignalOffer, "v=0 offer"))
	ev := a.nextSignal(t)
	assert.Equal(t, swarm.SignalEvent{From: b.hello.PeerID, Signal: swarm.Signal{Session: session, Kind: swarm.SignalOffer, SDP: "v=0 offer"}}, ev)
	assert.Equal(t, http.StatusForbidden, f.signal(stranger, b.hello.PeerID, session, swarm.SignalAnswer, "v=0 hijack"),
		"only the offer's recipient answers it")
	require.Equal(t, http.StatusAccepted, f.signal(a, b.hello.PeerID, session, swarm.SignalAnswer, "v=0 answer"))
	assert.Equal(t, "v=0 answer", b.nextSignal(t).SDP)
	assert.Equal(t, http.StatusForbidden, f.signal(a, b.hello.PeerID, session, swarm.SignalAnswer, "v=0 again"),
		"an offer is answered once")

	forged := *b
	forged.hello.Token = "1-forged"
	assert.Equal(t, http.StatusUnauthorized, f.signal(&forged, a.hello.PeerID, session, swarm.SignalOffer, "v=0"))
	assert.Equal(t, http.StatusBadRequest, f.signal(b, a.hello.PeerID, "nope", swarm.SignalOffer, "v=0"))
	assert.Equal(t, http.StatusBadRequest, f.signal(b, a.hello.PeerID, session, "candidate", "v=0"))
	assert.Equal(t, http.StatusBadRequest, f.signal(b, a.hello.PeerID, session, swarm.SignalOffer, strings.Repeat("x", swarm.MaxSDPBytes+1)))
	assert.Equal(t, http.StatusBadRequest, f.signal(b, b.hello.PeerID, session, swarm.SignalOffer, "v=0"), "to itself")
	select {
	case ev := <-a.sigs:
		t.Fatalf("a got a signal it should not have: %+v", ev)
	default:
	}

	st := f.tr.Snapshot()
	assert.Equal(t, int64(2), st.Signals[SignalRelayed])
	assert.Equal(t, int64(4), st.Signals[SignalUnpaired])
}

// TestHelloNamesICEServers: the hello carries the gateway's STUN port and the configured
// servers, a TURN server without a username with credentials for this peer that a TURN
// server sharing the secret checks.
func TestHelloNamesICEServers(t *testing.T) {
	secret := []byte("turn-secret")
	f := newFixture(t, Config{STUNPort: 3478, TURNSecret: secret, ICEServers: []swarm.ICEServer{
		{URLs: []string{"stun:stun.example:3478"}},
		{URLs: []string{"turn:turn.example:3478?transport=udp"}},
		{URLs: []string{"turn:static.example:3478"}, Username: "u", Credential: "p"},
	}})
	a, _ := f.open(sub(7001), "", "")
	h := a.hello
	assert.Equal(t, 3478, h.STUNPort)
	require.Len(t, h.ICEServers, 3)
	assert.Empty(t, h.ICEServers[0].Username, "STUN needs no credentials")
	user := h.ICEServers[1].Username
	assert.True(t, strings.HasSuffix(user, ":"+h.PeerID), "username %q: EXPIRY:PEER-ID", user)
	expiry, err := strconv.ParseInt(strings.TrimSuffix(user, ":"+h.PeerID), 10, 64)
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Now().Add(TURNCredentialTTL).Unix()), float64(expiry), 60)
	mac := hmac.New(sha1.New, secret) // coturn's check: base64(HMAC-SHA1(secret, username))
	mac.Write([]byte(user))
	assert.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), h.ICEServers[1].Credential)
	assert.Equal(t, "u", h.ICEServers[2].Username, "given credentials are kept")
}

// TestICEOnlyPeerIsASource: a proxy reached over WebRTC only advertises no address; plans
// name it with ICE and no address, and its neighbours' plans say which of them take WebRTC.
func TestICEOnlyPeerIsASource(t *testing.T) {
	f := newFixture(t, Config{})
	a, code := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, ICE: true}, "", "")
	require.Equal(t, http.StatusOK, code)
	a.plan(t)
	cert := strings.Repeat("c0", 32)
	bsub := sub(7002)
	bsub.Cert = cert
	b, _ := f.open(bsub, "", "")
	src := b.plan(t).Stripes[0].Sources[0]
	assert.Equal(t, swarm.Source{ID: a.hello.PeerID, ICE: true}, src)
	pa := a.plan(t)
	assert.Equal(t, swarm.Source{ID: b.hello.PeerID, Addr: "127.0.0.1:7002", Cert: cert}, pa.Stripes[1].Sources[0],
		"b takes no WebRTC; its neighbour port's certificate goes with its address")
	_, code = f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}}, "", "")
	assert.Equal(t, http.StatusBadRequest, code, "an uploader without WebRTC needs an address")

	// An address the policy refuses (behind a NAT, a proxy's own address is a LAN one, which
	// the public policy refuses; here, someone else's public address): over WebRTC the
	// proxy still uploads, with no address given to anyone.
	lan, code := f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: "8.8.8.8:8082", ICE: true, Cert: cert}, "", "")
	require.Equal(t, http.StatusOK, code)
	_, code = f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: "8.8.8.8:8082"}, "", "")
	assert.Equal(t, http.StatusBadRequest, code, "without WebRTC, the policy refuses it as before")
	p, ok, err := f.reg.Peer(t.Context(), "tv", lan.hello.PeerID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Empty(t, p.Addr, "the LAN address is given to no one")
	assert.Empty(t, p.Cert, "nor a certificate for it")
	assert.True(t, p.ICE)
}

// TestReportPathsBounded: a report's bytes by path, and by rendition, never add up to more
// than the peer bytes it counts (a report not cut otherwise included), and an unknown path
// is refused.
func TestReportPathsBounded(t *testing.T) {
	f := newFixture(t, Config{})
	f.list(8, 1000, 2000)
	a, _ := f.open(sub(7001), "", "")
	a.plan(t)
	id, tok := a.hello.PeerID, a.hello.Token
	require.Equal(t, http.StatusNoContent, f.report(swarm.ReportRequest{PeerID: id, Token: tok, Channel: "tv",
		Stats: swarm.Counters{BytesFromPeers: 300, BytesUploaded: 300}, Paths: map[string]int64{"direct": 1_000_000, "relay": 3_000_000},
		Renditions: map[string]swarm.Counters{"r0": {BytesFromPeers: 1_000_000}}}))
	assert.Equal(t, http.StatusBadRequest, f.report(swarm.ReportRequest{PeerID: id, Token: tok, Channel: "tv",
		Paths: map[string]int64{"carrier-pigeon": 1}}))
	now := time.Now()
	bs, err := f.reg.Buckets(t.Context(), "tv", now.Add(-time.Minute), now.Add(time.Minute), 10*time.Second)
	require.NoError(t, err)
	var sum, relay, r0 int64
	for _, b := range bs {
		r0 += b.Renditions["r0"].BytesFromPeers
		for _, p := range b.Paths {
			sum += p.Bytes
			if p.Path == "relay" {
				relay += p.Bytes
			}
		}
	}
	assert.LessOrEqual(t, sum, int64(300))
	assert.InDelta(t, 225, relay, 1, "cut in proportion")
	assert.Equal(t, int64(300), r0, "a rendition's bytes cut to the report's")
}

// TestSignalsAcrossAFleet: two gateways on one Redis, a's stream on the first and b's on
// the second, every POST landing on the gateway that does not hold its sender's stream (as
// a balancer may send it): b's offer is checked by b's gateway and delivered by a's, a's
// answer the other way round. A stranger's offer, forwarded the same way, is refused where
// its stream is, and reaches no one; an answer is used once across the fleet too.
func TestSignalsAcrossAFleet(t *testing.T) {
	url := redistest.Start(t)
	open := func() Registry {
		reg, err := swarm.OpenRedis(url, swarm.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { reg.Close() })
		return reg
	}
	cfg := Config{PeerKey: []byte("the fleet's peer key")}
	g1, g2 := newFixtureOn(t, cfg, open()), newFixtureOn(t, cfg, open())
	require.NotNil(t, g1.tr.bus, "a Redis registry is a signal bus")

	a, _ := g1.open(sub(7001), "", "")
	a.plan(t)
	b, _ := g2.open(sub(7002), "", "")
	require.Equal(t, a.hello.PeerID, b.plan(t).Stripes[0].Sources[0].ID, "one swarm across the fleet")
	session := strings.Repeat("5e", 16)

	require.Equal(t, http.StatusAccepted, g1.signal(b, a.hello.PeerID, session, swarm.SignalOffer, "v=0 offer"), "forwarded")
	assert.Equal(t, swarm.SignalEvent{From: b.hello.PeerID, Signal: swarm.Signal{Session: session, Kind: swarm.SignalOffer, SDP: "v=0 offer"}},
		a.nextSignal(t))
	require.Equal(t, http.StatusAccepted, g2.signal(a, b.hello.PeerID, session, swarm.SignalAnswer, "v=0 answer"), "forwarded")
	assert.Equal(t, "v=0 answer", b.nextSignal(t).SDP)

	// g2 checked b's offer and passed it on; g1 delivered it. The answer: g1 checked it
	// (the offer was delivered there) and passed it on; g2 delivered it.
	counts := func(f *fixture) [numSignalResults]int64 { return f.tr.Snapshot().Signals }
	require.Eventually(t, func() bool {
		c1, c2 := counts(g1), counts(g2)
		return c1[SignalRelayed] == 1 && c2[SignalRelayed] == 1 && c1[SignalForwarded] == 2 && c2[SignalForwarded] == 2
	}, 5*time.Second, 10*time.Millisecond, "g1 %v, g2 %v", counts(g1), counts(g2))

	stranger, _ := g2.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, Addr: ":7009", Group: "far"}, "", "")
	stranger.plan(t)
	assert.Equal(t, http.StatusForbidden, g2.signal(stranger, a.hello.PeerID, session, swarm.SignalOffer, "v=0 stranger"),
		"on its own gateway: refused at once")
	assert.Equal(t, http.StatusAccepted, g1.signal(stranger, a.hello.PeerID, session, swarm.SignalOffer, "v=0 stranger"),
		"elsewhere: on its way to its own gateway")
	assert.Equal(t, http.StatusAccepted, g2.signal(a, b.hello.PeerID, session, swarm.SignalAnswer, "v=0 again"),
		"elsewhere: on its way")
	require.Eventually(t, func() bool { return counts(g2)[SignalUnpaired] == 2 && counts(g1)[SignalUnpaired] == 1 },
		5*time.Second, 10*time.Millisecond, "the stranger's offer refused by g2, the second answer by g1: g1 %v, g2 %v", counts(g1), counts(g2))
	// The bus keeps order: a message published after the refused ones reaches a after them.
	c := *b
	require.Equal(t, http.StatusAccepted, g1.signal(&c, a.hello.PeerID, strings.Repeat("6f", 16), swarm.SignalOffer, "v=0 later"))
	assert.Equal(t, "v=0 later", a.nextSignal(t).SDP, "nothing from the stranger came first")
	select {
	case ev := <-b.sigs:
		t.Fatalf("b got a second answer: %+v", ev)
	default:
	}
}

// TestSymmetricNATPeersPlannedWithTheirSite: a peer behind a symmetric NAT that neighbours
// cannot dial is planned with its own site's peers only (same group, same public address),
// in both directions; one with an address neighbours dial (a port mapping), or behind a cone
// NAT, stays in the group's cell.
func TestSymmetricNATPeersPlannedWithTheirSite(t *testing.T) {
	f := newFixture(t, Config{})
	ice := func(nat string) swarm.Subscription {
		return swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, ICE: true, NAT: nat}
	}
	cone, code := f.openFrom(ice(swarm.NATCone), "", "", "198.51.100.1")
	require.Equal(t, http.StatusOK, code)
	cone.plan(t)
	s1, code := f.openFrom(ice(swarm.NATSymmetric), "", "", "203.0.113.9")
	require.Equal(t, http.StatusOK, code)
	p1 := s1.plan(t)
	for i, sp := range p1.Stripes {
		assert.True(t, sp.Root, "alone on its site: the root of stripe %d", i)
		assert.Empty(t, sp.Sources)
	}
	s2, code := f.openFrom(ice(swarm.NATSymmetric), "", "", "203.0.113.9")
	require.Equal(t, http.StatusOK, code)
	var names []string
	for _, sp := range s2.plan(t).Stripes {
		for _, src := range sp.Sources {
			names = append(names, src.ID)
		}
	}
	assert.Equal(t, []string{s1.hello.PeerID}, slices.Compact(names), "its sources are its site's")

	// The cone peer never gets them as sources, nor they it; a symmetric peer with a
	// forwarded port (an address) is an ordinary member.
	mapped, code := f.openFrom(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, ICE: true, NAT: swarm.NATSymmetric,
		Addr: "203.0.113.9:8082"}, "", "", "203.0.113.9")
	require.Equal(t, http.StatusOK, code)
	mp := mapped.plan(t)
	var all []string
	for _, sp := range mp.Stripes {
		for _, src := range sp.Sources {
			all = append(all, src.ID)
		}
	}
	assert.Contains(t, all, cone.hello.PeerID, "the mapped peer shares the cone peer's cell")
	assert.NotContains(t, all, s1.hello.PeerID)
	assert.NotContains(t, all, s2.hello.PeerID)
	// The site's roots are then fed by the group's peer with an address: they try it
	// before the gateway.
	fed := func(p swarm.Plan) bool {
		roots := 0
		for _, sp := range p.Stripes {
			if !sp.Root {
				continue
			}
			roots++
			if len(sp.Sources) != 1 || sp.Sources[0].ID != mapped.hello.PeerID {
				return false
			}
		}
		return roots > 0
	}
	for deadline := time.Now().Add(5 * time.Second); !fed(s1.plan(t)); {
		require.True(t, time.Now().Before(deadline), "no plan of s1 with its feeder")
	}
	p, ok, err := f.reg.Peer(t.Context(), "tv", s1.hello.PeerID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "203.0.113.9", p.Site)
	assert.Equal(t, "@203.0.113.9", p.CellGroup())
	p, _, err = f.reg.Peer(t.Context(), "tv", mapped.hello.PeerID)
	require.NoError(t, err)
	assert.Empty(t, p.Site)

	_, code = f.open(swarm.Subscription{Channel: "tv", Renditions: []string{"r0"}, ICE: true, NAT: "full-cone"}, "", "")
	assert.Equal(t, http.StatusBadRequest, code, "an unknown NAT kind is refused")
}
