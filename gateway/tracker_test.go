package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/swarm"
)

func post(t *testing.T, url string, body any) (*http.Response, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		b, err = json.Marshal(v)
		require.NoError(t, err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

func announce(t *testing.T, base string, req swarm.AnnounceRequest) swarm.AnnounceResponse {
	t.Helper()
	resp, body := post(t, base+swarm.PathAnnounce, req)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var ar swarm.AnnounceResponse
	require.NoError(t, json.Unmarshal(body, &ar))
	return ar
}

func TestTrackerJoinLookupHave(t *testing.T) {
	_, front := newTestServer(t, &hlstest.FakeLive{})
	a := announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001"})
	b := announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: "10.0.0.7:9002", Group: "office"})
	require.True(t, swarm.ValidPeerID(a.PeerID))
	assert.NotEqual(t, a.PeerID, b.PeerID)
	assert.Positive(t, a.IntervalMS)
	digest := strings.Repeat("ab", 32)

	tokens := map[string]string{a.PeerID: a.Token, b.PeerID: b.Token}
	lookup := func(id string) swarm.LookupResponse {
		resp, body := post(t, front.URL+swarm.PathLookup, swarm.LookupRequest{PeerID: id, Token: tokens[id], Channel: "tv", Digest: digest})
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var lr swarm.LookupResponse
		require.NoError(t, json.Unmarshal(body, &lr))
		return lr
	}
	first := lookup(a.PeerID)
	assert.True(t, first.Fetch, "first asker is elected to fetch from the gateway")
	assert.Empty(t, first.Holders)

	second := lookup(b.PeerID)
	assert.False(t, second.Fetch)
	require.Len(t, second.Holders, 1)
	assert.Equal(t, a.PeerID, second.Holders[0].ID)
	assert.Equal(t, "127.0.0.1:9001", second.Holders[0].Addr, "unspecified host → observed address")
	assert.Equal(t, swarm.StateFetching, second.Holders[0].State)

	resp, _ := post(t, front.URL+swarm.PathHave, swarm.HaveRequest{PeerID: a.PeerID, Token: a.Token, Channel: "tv", Digests: []string{digest}})
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, swarm.StateHave, lookup(b.PeerID).Holders[0].State)

	resp, _ = post(t, front.URL+swarm.PathLeave, swarm.LeaveRequest{PeerID: a.PeerID, Token: a.Token, Channel: "tv"})
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, lookup(b.PeerID).Holders)
}

// TestTrackerPeerTokens: every tracker call after the first announce needs the token the
// gateway issued for that peer ID in that channel, unexpired.
func TestTrackerPeerTokens(t *testing.T) {
	s, front := newTestServer(t, &hlstest.FakeLive{})
	a := announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001"})
	b := announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: ":9002"})
	require.NotEmpty(t, a.Token)
	digest := strings.Repeat("ab", 32)
	now := s.cfg.Now()
	for name, tc := range map[string]struct {
		token string
		want  int
	}{
		"valid":           {a.Token, http.StatusOK},
		"missing":         {"", http.StatusUnauthorized},
		"another peer's":  {b.Token, http.StatusUnauthorized},
		"garbage":         {"x-y", http.StatusUnauthorized},
		"expired":         {peerToken(s.cfg.PeerKey, "tv", a.PeerID, now.Add(-time.Second)), http.StatusUnauthorized},
		"another channel": {peerToken(s.cfg.PeerKey, "radio", a.PeerID, now.Add(time.Minute)), http.StatusUnauthorized},
		"another key":     {peerToken([]byte("k"), "tv", a.PeerID, now.Add(time.Minute)), http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := post(t, front.URL+swarm.PathLookup, swarm.LookupRequest{PeerID: a.PeerID, Token: tc.token, Channel: "tv", Digest: digest})
			assert.Equal(t, tc.want, resp.StatusCode, string(body))
			resp, body = post(t, front.URL+swarm.PathHave, swarm.HaveRequest{PeerID: a.PeerID, Token: tc.token, Channel: "tv", Digests: []string{digest}})
			wantHave := http.StatusNoContent
			if tc.want != http.StatusOK {
				wantHave = tc.want
			}
			assert.Equal(t, wantHave, resp.StatusCode, string(body))
			resp, _ = post(t, front.URL+swarm.PathAnnounce, swarm.AnnounceRequest{PeerID: a.PeerID, Token: tc.token, Channel: "tv", Addr: ":9001"})
			assert.Equal(t, tc.want, resp.StatusCode, "heartbeat")
		})
	}
	resp, _ := post(t, front.URL+swarm.PathLeave, swarm.LeaveRequest{PeerID: a.PeerID, Token: b.Token, Channel: "tv"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "b cannot make a leave")
	again := announce(t, front.URL, swarm.AnnounceRequest{PeerID: a.PeerID, Token: a.Token, Channel: "tv", Addr: ":9001"})
	assert.Equal(t, a.PeerID, again.PeerID, "a heartbeat keeps the ID")
	assert.NotEmpty(t, again.Token)
}

// TestTrackerBansReportedPeer: a peer that two others report for bad bytes leaves the
// swarm and cannot come back from the same address for a while; one report is not enough.
func TestTrackerBansReportedPeer(t *testing.T) {
	_, front := newTestServer(t, &hlstest.FakeLive{})
	bad := announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: "10.0.0.66:9000"})
	r1 := announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: "10.0.0.1:9000"})
	r2 := announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: "10.0.0.2:9000"})
	digest := strings.Repeat("cd", 32)
	resp, _ := post(t, front.URL+swarm.PathHave, swarm.HaveRequest{PeerID: bad.PeerID, Token: bad.Token, Channel: "tv", Digests: []string{digest}})
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	holders := func() int {
		resp, body := post(t, front.URL+swarm.PathLookup, swarm.LookupRequest{PeerID: r1.PeerID, Token: r1.Token, Channel: "tv", Digest: digest})
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var lr swarm.LookupResponse
		require.NoError(t, json.Unmarshal(body, &lr))
		return len(lr.Holders)
	}
	require.Equal(t, 1, holders())
	report := func(r swarm.AnnounceResponse, addr string) {
		announce(t, front.URL, swarm.AnnounceRequest{PeerID: r.PeerID, Token: r.Token, Channel: "tv", Addr: addr, Banned: []string{bad.PeerID}})
	}
	report(r1, "10.0.0.1:9000")
	report(r1, "10.0.0.1:9000")
	assert.Equal(t, 1, holders(), "one reporter, however often, bans nobody")
	report(r2, "10.0.0.2:9000")
	assert.Zero(t, holders(), "two reporters: out of the swarm")
	resp, _ = post(t, front.URL+swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "tv", Addr: "10.0.0.66:9000"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "and cannot rejoin from that address")
}

func TestTrackerRejectsBadInput(t *testing.T) {
	_, front := newTestServer(t, &hlstest.FakeLive{})
	cases := []struct {
		name, path string
		body       any
		want       int
	}{
		{"garbage", swarm.PathAnnounce, "{not json", 400},
		{"unknown channel", swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "radio", Addr: ":1"}, 404},
		{"bad channel", swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "../x", Addr: ":1"}, 400},
		{"third party public address", swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "tv", Addr: "8.8.8.8:53"}, 400},
		{"hostname", swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "tv", Addr: "example.com:80"}, 400},
		{"negative stats", swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "tv", Addr: ":1", Stats: swarm.Counters{BytesFromPeers: -5}}, 400},
		{"oversized", swarm.PathAnnounce, `{"channel":"tv","addr":":1","group":"` + strings.Repeat("x", swarm.MaxRequestBytes) + `"}`, 413},
		{"lookup unknown channel", swarm.PathLookup, swarm.LookupRequest{PeerID: strings.Repeat("a", 32), Channel: "radio", Digest: strings.Repeat("a", 64)}, 404},
		{"have unknown channel", swarm.PathHave, swarm.HaveRequest{PeerID: strings.Repeat("a", 32), Channel: "radio", Digests: []string{strings.Repeat("a", 64)}}, 404},
		{"bad digest", swarm.PathLookup, swarm.LookupRequest{PeerID: strings.Repeat("a", 32), Channel: "tv", Digest: "zz"}, 400},
		{"too many reports", swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "tv", Addr: ":1", Banned: make([]string, swarm.MaxBannedReports+1)}, 400},
		{"bad report", swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "tv", Addr: ":1", Banned: []string{"x"}}, 400},
		{"long token", swarm.PathLookup, swarm.LookupRequest{PeerID: strings.Repeat("a", 32), Channel: "tv", Digest: strings.Repeat("a", 64), Token: strings.Repeat("1", 200)}, 400},
		{"too many digests", swarm.PathHave, swarm.HaveRequest{PeerID: strings.Repeat("a", 32), Channel: "tv", Digests: make([]string, swarm.MaxHaveDigests+1)}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, front.URL+tc.path, tc.body)
			assert.Equal(t, tc.want, resp.StatusCode, string(body))
		})
	}
}

func TestStatsSumReportsAndEgress(t *testing.T) {
	_, front := newTestServer(t, &hlstest.FakeLive{})
	announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001", Stats: swarm.Counters{BytesFromGateway: 100, BytesFromPeers: 300}})
	announce(t, front.URL, swarm.AnnounceRequest{Channel: "tv", Addr: ":9002", Stats: swarm.Counters{BytesFromPeers: 600}})
	resp, body := get(t, front.URL+swarm.PathStats)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var sr swarm.StatsResponse
	require.NoError(t, json.Unmarshal([]byte(body), &sr))
	tv := sr.Channels["tv"]
	assert.Equal(t, int64(900), tv.BytesFromPeers)
	assert.Equal(t, int64(100), tv.BytesFromGateway)
	assert.InDelta(t, 0.9, tv.Offload, 1e-9)
	assert.Equal(t, 2, tv.ActivePeers)
}

func TestAdvertisedAddr(t *testing.T) {
	for claimed, want := range map[string]string{
		":8082":           "203.0.113.9:8082",
		"0.0.0.0:8082":    "203.0.113.9:8082",
		"192.168.1.5:80":  "192.168.1.5:80",
		"127.0.0.1:9":     "127.0.0.1:9",
		"203.0.113.9:443": "203.0.113.9:443",
		"198.51.100.1:80": "",
		"[fe80::1]:80":    "[fe80::1]:80",
	} {
		got, err := advertisedAddr(claimed, "203.0.113.9")
		if want == "" {
			assert.ErrorIs(t, err, swarm.ErrBadRequest, claimed)
			continue
		}
		require.NoError(t, err, claimed)
		assert.Equal(t, want, got, claimed)
	}
}

// TestTrackerRateLimit: one address gets TrackerRate calls a second (burst twice that);
// past it, 429 with Retry-After, until its bucket refills.
func TestTrackerRateLimit(t *testing.T) {
	origin := httptest.NewServer(&hlstest.FakeLive{})
	t.Cleanup(origin.Close)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := New(Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}},
		TrackerRate: 5, Now: clock}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	front := httptest.NewServer(s.Handler())
	t.Cleanup(front.Close)
	call := func() int {
		resp, _ := post(t, front.URL+swarm.PathAnnounce, swarm.AnnounceRequest{Channel: "tv", Addr: ":9001"})
		return resp.StatusCode
	}
	for i := range 10 {
		require.Equal(t, http.StatusOK, call(), "call %d of the burst", i)
	}
	resp, _ := post(t, front.URL+swarm.PathLookup, swarm.LookupRequest{PeerID: strings.Repeat("a", 32), Channel: "tv", Digest: strings.Repeat("a", 64)})
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "every tracker route shares the bucket")
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	for range 5 {
		assert.Equal(t, http.StatusOK, call(), "refilled at 5 a second")
	}
	assert.Equal(t, http.StatusTooManyRequests, call())
	presp, err := http.Get(front.URL + "/live/tv/index.m3u8")
	require.NoError(t, err)
	presp.Body.Close()
	assert.NotEqual(t, http.StatusTooManyRequests, presp.StatusCode, "players are not rate limited")
}
