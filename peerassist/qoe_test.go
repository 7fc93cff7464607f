package peerassist

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a Config.Now the test moves.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// play requests /live/tv/{path} as a player, with a CMCD-Request header when cmcd is set,
// reads the response and waits for its handler to return.
func (tp *testProxy) play(t *testing.T, method, path, cmcd string) {
	t.Helper()
	req, err := http.NewRequest(method, tp.player.URL+"/live/tv/"+path, nil)
	require.NoError(t, err)
	if cmcd != "" {
		req.Header.Set("CMCD-Request", cmcd)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	tp.settle(t)
}

// TestStartup: a player's startup runs from its first playlist request to the first media
// segment written to it; a player that comes back after sessionIdle starts again.
func TestStartup(t *testing.T) {
	clock := newFakeClock()
	gw := newFakeGateway(3)
	segs := gw.window.Segments
	p := startProxy(t, gw, func(c *Config) { c.Now = clock.Now }) // the first playlist request
	status := func() ChannelStatus { return p.Status().Channels["tv"] }

	clock.advance(300 * time.Millisecond)
	p.play(t, http.MethodGet, "index.m3u8", "") // a reload: the same session
	clock.advance(450 * time.Millisecond)
	p.play(t, http.MethodHead, segs[0].Name, "") // no media reaches the player
	assert.Zero(t, status().Startups)
	p.play(t, http.MethodGet, segs[0].Name, "")
	assert.Equal(t, int64(1), status().Startups)
	assert.Equal(t, int64(750), status().StartupMillis)

	clock.advance(time.Second)
	p.play(t, http.MethodGet, segs[1].Name, "")
	assert.Equal(t, int64(1), status().Startups, "one startup per session")

	clock.advance(sessionIdle + time.Second) // the player went away; now it comes back
	p.play(t, http.MethodGet, "index.m3u8", "")
	clock.advance(200 * time.Millisecond)
	p.play(t, http.MethodGet, segs[2].Name, "")
	st := status()
	assert.Equal(t, int64(2), st.Startups)
	assert.Equal(t, int64(950), st.StartupMillis)
	assert.Zero(t, st.Stalls)
}

// TestStalls: a media segment written to the player after the buffer-dry deadline its
// request got (inferred from the playhead, or from CMCD) is one stall; on time, none; the
// session's first segment is its startup, never a stall. The gateway's answer takes the
// time the case says (on the proxy's clock).
func TestStalls(t *testing.T) {
	for _, tc := range []struct {
		name       string
		firstCMCD  string        // the first segment request's CMCD-Request header
		firstDelay time.Duration // the gateway's time for the session's first segment
		wait       time.Duration // from its delivery to the second segment's request
		cmcd       string        // the second request's CMCD-Request header
		delay      time.Duration // the gateway's time for the second segment
		stalls     int64
	}{
		{name: "on time", wait: time.Second, delay: 500 * time.Millisecond},
		{name: "after the inferred buffer ran dry", wait: time.Second, delay: 1500 * time.Millisecond, stalls: 1},
		{name: "exactly when it runs dry: on time", wait: time.Second, delay: time.Second},
		{name: "dry before the request arrived", wait: 3 * time.Second, delay: 100 * time.Millisecond, stalls: 1},
		{name: "CMCD: after the reported buffer", wait: time.Second, cmcd: "bl=300", delay: 500 * time.Millisecond, stalls: 1},
		{name: "CMCD: within the reported buffer, past the inferred one", wait: time.Second, cmcd: "bl=3000", delay: 2 * time.Second},
		{name: "the first segment is the startup, never a stall", firstCMCD: "bl=0", firstDelay: 5 * time.Second,
			wait: time.Second, delay: 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			gw := newFakeGateway(2)
			segs := gw.window.Segments
			delays := map[string]time.Duration{segs[0].Name: tc.firstDelay, segs[1].Name: tc.delay}
			gw.onSegment = func(name string) { clock.advance(delays[name]) }
			p := startProxy(t, gw, func(c *Config) { c.Now = clock.Now })
			p.play(t, http.MethodGet, segs[0].Name, tc.firstCMCD)
			clock.advance(tc.wait)
			p.play(t, http.MethodGet, segs[1].Name, tc.cmcd)

			resp, body := httpGet(t, p.player.URL+"/api/v1/status")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var st Status
			require.NoError(t, json.Unmarshal([]byte(body), &st))
			tv := st.Channels["tv"]
			assert.Equal(t, tc.stalls, tv.Stalls)
			assert.Equal(t, int64(1), tv.Startups)
			assert.Equal(t, tc.firstDelay.Milliseconds(), tv.StartupMillis)
			assert.Equal(t, tc.stalls, st.Totals.Stalls)

			joined := len(gw.reported())
			m := p.member("tv")
			require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
			sent := gw.reported()[joined].Stats
			assert.Equal(t, [3]int64{tc.stalls, 1, tc.firstDelay.Milliseconds()}, [3]int64{sent.Stalls, sent.Startups, sent.StartupMillis},
				"reported to the gateway")
		})
	}
}

// TestPlayerSessionsBounded: a channel keeps at most maxSessions sessions, evicting the one
// idle longest, and drops sessions idle for sessionIdle.
func TestPlayerSessionsBounded(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var ps players
	for i := range maxSessions {
		ps.playlist(fmt.Sprintf("10.0.%d.%d", i/256, i%256), t0.Add(time.Duration(i)*time.Millisecond))
	}
	now := t0.Add(2 * time.Second)
	ps.touch("10.0.0.0", now) // active again: 10.0.0.1 is now the one idle longest
	ps.playlist("192.0.2.1", now)
	assert.Len(t, ps.m, maxSessions)
	assert.Contains(t, ps.m, "10.0.0.0")
	assert.NotContains(t, ps.m, "10.0.0.1", "the one idle longest evicted")

	now = now.Add(sessionIdle)
	ps.touch("192.0.2.1", now) // idle for exactly sessionIdle: still there
	now = now.Add(time.Second)
	ps.playlist("192.0.2.2", now)
	assert.Len(t, ps.m, 2, "the idle ones dropped")

	startup, first, stalled := ps.delivered("192.0.2.1", now.Add(-time.Second), now)
	assert.True(t, first)
	assert.False(t, stalled, "the first segment is the startup, even past its deadline")
	assert.Equal(t, sessionIdle+time.Second, startup, "from its playlist request")
	_, first, stalled = ps.delivered("192.0.2.1", now, now.Add(time.Millisecond))
	assert.False(t, first)
	assert.True(t, stalled)
	_, first, stalled = ps.delivered("192.0.2.1", now, now.Add(sessionIdle+time.Hour))
	assert.False(t, first || stalled, "idle too long: no session, nothing judged")
	assert.NotContains(t, ps.m, "192.0.2.1")
}

// TestNeedBy: a request's deadline is a buffer-dry time (one a delivery can miss) when it
// comes from CMCD or from the playhead for a segment after the last served; otherwise it is
// "now" for want of knowing better, and nothing is judged.
func TestNeedBy(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.Now()
	p, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: ":1", Now: clock.Now})
	require.NoError(t, err)
	m := newMember("tv")
	m.head("").served(10, 2*time.Second, t0) // dry at t0+2 s
	seg := func(seq uint64) segInfo { return segInfo{seq: seq, dur: 2 * time.Second} }
	for _, tc := range []struct {
		name string
		info segInfo
		cmcd string
		at   time.Time
		dry  bool
	}{
		{"the next segment: when the buffer runs dry", seg(11), "", t0.Add(2 * time.Second), true},
		{"two ahead: a duration later", seg(12), "", t0.Add(4 * time.Second), true},
		{"the one served again (a retry): now, not judged", seg(10), "", t0, false},
		{"an earlier one (a seek back): now, not judged", seg(9), "", t0, false},
		{"an init section: now, not judged", segInfo{}, "", t0, false},
		// Last: CMCD's bl moves the playhead's dry time.
		{"CMCD's buffer", seg(11), "bl=700", t0.Add(700 * time.Millisecond), true},
		{"CMCD's empty buffer: already dry", seg(11), "bl=0", t0, true},
		{"CMCD on a retry still says when it runs dry", seg(10), "bl=1500", t0.Add(1500 * time.Millisecond), true},
	} {
		r := httptest.NewRequest(http.MethodGet, "/live/tv/x.ts", nil)
		if tc.cmcd != "" {
			r.Header.Set("CMCD-Request", tc.cmcd)
		}
		at, dry := p.needBy(r, m, tc.info)
		assert.Equal(t, tc.at, at, tc.name)
		assert.Equal(t, tc.dry, dry, tc.name)
	}
	_, dry := p.needBy(httptest.NewRequest(http.MethodGet, "/live/tv/r0/x.ts", nil), m, segInfo{rendition: "r0", seq: 1, dur: time.Second})
	assert.False(t, dry, "no playhead yet (a start): now, not judged")
}

// TestReturningPlayerIsAStart: a player that stopped for longer than two target durations
// and comes back is starting again: its next segment is needed now (not when a playhead
// long gone says, which was ~30 s away), and its first segment counts as a startup.
func TestReturningPlayerIsAStart(t *testing.T) {
	clock := newFakeClock()
	gw := newFakeGateway(12)
	segs := gw.window.Segments
	p := startProxy(t, gw, func(c *Config) { c.Now = clock.Now })
	p.play(t, http.MethodGet, segs[0].Name, "")
	clock.advance(time.Second)
	p.play(t, http.MethodGet, segs[1].Name, "")
	require.Equal(t, int64(1), p.Status().Channels["tv"].Startups)

	clock.advance(20 * time.Second) // gone for ten target durations; back, ten segments on
	p.play(t, http.MethodGet, "index.m3u8", "")
	m := p.member("tv")
	at, dry := p.needBy(httptest.NewRequest(http.MethodGet, "/live/tv/x.ts", nil), m, segInfo{seq: 11, dur: 2 * time.Second})
	assert.Equal(t, clock.Now(), at, "a start: needed now, urgent")
	assert.False(t, dry)
	clock.advance(300 * time.Millisecond)
	p.play(t, http.MethodGet, segs[11].Name, "")
	st := p.Status().Channels["tv"]
	assert.Equal(t, int64(2), st.Startups, "the return is a startup, as the player feels it")
	assert.Zero(t, st.Stalls)
}
