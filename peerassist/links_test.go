package peerassist

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// TestUnreachableLinkBacksOff: a source reached over WebRTC only whose link cannot be set up
// (here the gateway relays no signal) costs the fetches nothing but a try of the next rung:
// every segment comes from the gateway, no failure is held against the source (failures
// in a row get a neighbour reported), and the set-up is not tried again for every segment.
func TestUnreachableLinkBacksOff(t *testing.T) {
	gw := newFakeGateway(6)
	gw.setSources(swarm.Source{ID: strings.Repeat("ab", 16), ICE: true}) // no address: WebRTC only
	p := startProxy(t, gw, nil)
	playAll(t, p, gw)
	st := p.Status()
	assert.Equal(t, int64(6), st.Channels["tv"].SegmentsFromGateway)
	assert.Zero(t, st.Channels["tv"].NeighbourFailures, "a link that does not come up is not the source's fault")
	gw.mu.Lock()
	signals := gw.hits["signal"]
	gw.mu.Unlock()
	assert.Positive(t, signals, "the link was tried")
	assert.LessOrEqual(t, signals, 2, "and not again for each segment")
	misses := st.Channels["tv"].SwarmMisses
	assert.Positive(t, misses["pending"], "a fetch met the link still coming up: %v", misses)
	assert.Equal(t, int64(6), misses["pending"]+misses["resting"]+misses["time"], "every segment a miss, none the source's failure: %v", misses)
	require.NotNil(t, st.Links)
	assert.Positive(t, st.Links.Failed)
}

// TestLinkSetUpsPause: when no link comes up, whatever the source (the proxy's own NAT or
// CPU is at fault), set-ups pause after linkFailsToPause in a row instead of going on to
// every source the plans name.
func TestLinkSetUpsPause(t *testing.T) {
	gw := newFakeGateway(2)
	var srcs []swarm.Source
	for i := range 24 {
		srcs = append(srcs, swarm.Source{ID: fmt.Sprintf("%032x", i+1), ICE: true}) // WebRTC only
	}
	gw.setSources(srcs...)
	p := startProxy(t, gw, nil) // its plan names them: each is probed (no fetch joins in)
	// Every source's probe ends (set up or skipped): each is decided, none busy.
	require.Eventually(t, func() bool {
		p.routes.mu.Lock()
		defer p.routes.mu.Unlock()
		decided := 0
		for _, rt := range p.routes.m {
			if !rt.busy && rt.path != pathUnknown {
				decided++
			}
		}
		return decided == len(srcs)
	}, 10*time.Second, 10*time.Millisecond)
	st := p.Status()
	require.NotNil(t, st.Links)
	assert.GreaterOrEqual(t, st.Links.Failed, uint64(linkFailsToPause), "set-ups were tried")
	// The pause starts at the linkFailsToPause-th failure; at most the other probes' set-ups
	// under way then still run.
	assert.LessOrEqual(t, st.Links.Failed, uint64(linkFailsToPause+maxProbes-1), "then paused, not tried for all %d sources", len(srcs))
}

// TestNeighbourPortAdmitsOnlySwarmMembers: the neighbour port serves a request signed with
// the channel's swarm key of the moment (which the gateway gives the peers it admitted),
// and refuses one without (401), one signed with a key the gateway did not issue, for a
// channel this proxy does not follow, or replayed after the skew (403); refusals counted.
func TestNeighbourPortAdmitsOnlySwarmMembers(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	seg := gw.window.Segments[0]
	path := swarm.NeighbourSegmentPath + seg.Digest.String()
	resp, body := neighbourGet(t, p.neighbour.URL, path)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	// With its length, so that the asker reads it straight into its buffer: a chunked body
	// goes through the transport's 4 KiB reader (a tenth of a 1,000-viewer join's CPU).
	assert.Equal(t, int64(len(body)), resp.ContentLength)
	assert.Empty(t, resp.TransferEncoding)

	do := func(cred string) int {
		req, err := http.NewRequest(http.MethodGet, p.neighbour.URL+path, nil)
		require.NoError(t, err)
		if cred != "" {
			req.Header.Set(swarm.NeighbourAuthHeader, cred)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	sign := func(peerKey []byte, channel string, at time.Time) string {
		k := swarm.ChannelKeys(peerKey, channel, at)[0]
		cred, ok := swarm.SignNeighbourRequest(func(int64) (swarm.ChannelKey, bool) { return k, true }, channel, path, at)
		require.True(t, ok)
		return cred
	}
	now := time.Now()
	assert.Equal(t, http.StatusUnauthorized, do(""), "no credential")
	assert.Equal(t, http.StatusUnauthorized, do("tv garbage"), "a malformed one")
	assert.Equal(t, http.StatusForbidden, do(sign([]byte("not the gateway's"), "tv", now)), "a key the gateway did not issue")
	assert.Equal(t, http.StatusForbidden, do(sign(fakePeerKey, "radio", now)), "a channel this proxy does not follow")
	assert.Equal(t, http.StatusForbidden, do(sign(fakePeerKey, "tv", now.Add(-swarm.CredentialSkew-5*time.Second))), "replayed later")
	assert.Equal(t, http.StatusOK, do(sign(fakePeerKey, "tv", now)))
	assert.Equal(t, int64(5), p.Status().NeighbourRefused)
}

// TestSwarmKeysFollowTheGateway: a hello replaces the member's swarm keys (a gateway that
// restarted with another peer key issues other keys for the same windows), token events
// add the next window's, at most maxSwarmKeys are kept, and the gateway's clock is used.
func TestSwarmKeysFollowTheGateway(t *testing.T) {
	m := newMember("tv")
	now := time.Unix(1_800_000_000, 0)
	gwNow := now.Add(90 * time.Second) // this machine's clock is 90 s behind the gateway's
	old := swarm.ChannelKeys([]byte("old key"), "tv", gwNow)
	m.joined(swarm.Hello{PeerID: strings.Repeat("a", 32), SwarmKeys: old, TimeMS: gwNow.UnixMilli()}, now)
	assert.Equal(t, gwNow, m.gatewayNow(now))
	// The gateway restarted with another key, a window later: its hello's keys replace
	// the old gateway's, those of the window they do not cover included.
	later := gwNow.Add(swarm.CredentialWindow)
	fresh := swarm.ChannelKeys([]byte("new key"), "tv", later)
	m.joined(swarm.Hello{PeerID: strings.Repeat("b", 32), SwarmKeys: fresh, TimeMS: later.UnixMilli()}, now)
	k, ok := m.swarmKey(fresh[0].Window)
	require.True(t, ok)
	assert.Equal(t, fresh[0], k, "the restarted gateway's key, not the old one")
	_, ok = m.swarmKey(old[0].Window)
	assert.False(t, ok, "the old gateway's keys are gone")
	for i := range 5 {
		at := later.Add(time.Duration(i+1) * swarm.CredentialWindow)
		m.refreshToken(swarm.TokenEvent{Token: "t", SwarmKeys: swarm.ChannelKeys([]byte("new key"), "tv", at), TimeMS: at.UnixMilli()}, now)
	}
	m.mu.Lock()
	n := len(m.swarmKeys)
	m.mu.Unlock()
	assert.Equal(t, maxSwarmKeys, n)
	_, ok = m.swarmKey(fresh[0].Window)
	assert.False(t, ok, "the oldest keys are dropped")
}

// TestRestEndsWhenThePathIsKnown: a source skipped because its path was not known (a connect
// still under way at a fetch's stall bound) is usable again as soon as it is known (the probe
// decided it, or the address took a connection), not after the rest's full 5 s; a failure's
// skip stays.
func TestRestEndsWhenThePathIsKnown(t *testing.T) {
	gw := newFakeGateway(2)
	a, b := strings.Repeat("a1", 16), strings.Repeat("b2", 16)
	gw.setSources(swarm.Source{ID: a, Addr: "127.0.0.1:1", ICE: true}, swarm.Source{ID: b, Addr: "127.0.0.1:2", ICE: true})
	p := startProxy(t, gw, nil)
	require.Eventually(t, func() bool { _, ok := p.routes.get(b); return ok }, 5*time.Second, 10*time.Millisecond, "the plan names the sources")
	now := p.cfg.Now()

	p.neigh.rest(a, skipAfterFailure, now)
	require.False(t, p.neigh.usable(a, now))
	p.routes.decide(a, pathDirect, false) // the probe: its address takes connections
	assert.True(t, p.neigh.usable(a, now), "known by the probe: usable at once")

	p.neigh.rest(b, skipAfterFailure, now)
	p.routes.tookConnection(b, "127.0.0.1:2")
	assert.True(t, p.neigh.usable(b, now), "known by a connection taken: usable at once")

	p.neigh.done(a, false, skipAfterFailure, now) // a failure
	p.routes.decide(a, pathDirect, false)
	assert.False(t, p.neigh.usable(a, now), "a failure's skip is not lifted")
}
