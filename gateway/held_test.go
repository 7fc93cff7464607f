package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/swarm"
)

// TestMemberFetchHeldWhileSaturated: while the gateway has BusyTransfers segment transfers
// under way, a member's fetch of a segment its cell's root asked for is answered 503 with
// RawFlow-Held; the root itself, another cell's member, a member whose player needs the
// segment within swarm.UrgentNeed, a range, a request that says nothing (a player, a leech
// with no plan), and any fetch while the uplink is not saturated are served.
func TestMemberFetchHeldWhileSaturated(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, front := newTestServer(t, o)
	require.NoError(t, poll(t, s))
	url := front.URL + "/live/tv/" + listed(t, s).Segments[0].Name
	member := func(group, need string, more ...string) int {
		resp, _ := get(t, url, append([]string{swarm.FetchHeader, swarm.FetchMember, swarm.GroupHeader, group, swarm.NeedHeader, need}, more...)...)
		return resp.StatusCode
	}
	saturate := s.held.transfer // as many transfers under way as BusyTransfers (default 8)
	var ends []func()
	for range 8 {
		ends = append(ends, saturate())
	}

	assert.Equal(t, http.StatusOK, member("siteA", "5000"), "no root of the cell is getting it: served")
	resp, _ := get(t, url, swarm.FetchHeader, swarm.FetchRoot, swarm.GroupHeader, "siteA")
	require.Equal(t, http.StatusOK, resp.StatusCode, "a root is never held back")

	resp, _ = get(t, url, swarm.FetchHeader, swarm.FetchMember, swarm.GroupHeader, "siteA", swarm.NeedHeader, "5000")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the cell's root is getting it: held back")
	assert.NotEmpty(t, resp.Header.Get(swarm.HeldHeader))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	assert.Equal(t, http.StatusOK, member("siteA", "1000"), "needed within UrgentNeed: served")
	assert.Equal(t, http.StatusOK, member("siteA", ""), "no time given: served")
	assert.Equal(t, http.StatusOK, member("siteB", "5000"), "another cell: served")
	assert.Equal(t, http.StatusPartialContent, member("siteA", "5000", "Range", "bytes=10-"), "the rest of a partial transfer: served")
	resp, _ = get(t, url)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a player: served")

	ends[0]() // one transfer fewer: not saturated
	assert.Equal(t, http.StatusOK, member("siteA", "5000"), "not saturated: served")
	ends[0] = saturate()
	assert.Equal(t, http.StatusServiceUnavailable, member("siteA", "5000"), "saturated again: held back")
	for _, end := range ends {
		end()
	}

	_, metrics := get(t, front.URL+"/metrics")
	assert.Contains(t, metrics, `rawflow_gateway_requests_total{channel="tv",kind="held"} 2`)
	assert.True(t, strings.Contains(metrics, `kind="segment"} 8`), "the held ones are not segments served")
	for _, line := range []string{ // the 8 served, by what each requester said it was
		`rawflow_gateway_segment_fetches_total{channel="tv",fetch="root"} 1`,
		`rawflow_gateway_segment_fetches_total{channel="tv",fetch="member"} 6`,
		`rawflow_gateway_segment_fetches_total{channel="tv",fetch="other"} 1`,
	} {
		assert.Contains(t, metrics, line+"\n")
	}
}

// TestHoldBackNever: BusyTransfers negative (--busy-transfers 0) never holds back.
func TestHoldBackNever(t *testing.T) {
	h := newHoldBack(-1, 0)
	for range 100 {
		h.transfer()
	}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(swarm.FetchHeader, swarm.FetchRoot)
	k := cellSegment{channel: "tv", name: "s"}
	require.True(t, h.admit(r, k, time.Unix(1e9, 0)))
	r.Header.Set(swarm.FetchHeader, swarm.FetchMember)
	r.Header.Set(swarm.NeedHeader, "9000")
	assert.True(t, h.admit(r, k, time.Unix(1e9, 0)))
}

// TestHoldBackByRate: with EgressLimit, segment bytes started at 90 % of it within the
// last second make the uplink saturated; two seconds later it is not.
func TestHoldBackByRate(t *testing.T) {
	h := newHoldBack(-1, 1000)
	t0 := time.Unix(1e9, 0)
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	k := cellSegment{channel: "tv", name: "s"}
	r.Header.Set(swarm.FetchHeader, swarm.FetchRoot)
	require.True(t, h.admit(r, k, t0))
	r.Header.Set(swarm.FetchHeader, swarm.FetchMember)
	r.Header.Set(swarm.NeedHeader, "9000")
	h.sent(800, t0)
	assert.True(t, h.admit(r, k, t0), "80 %: not saturated")
	h.sent(200, t0.Add(500*time.Millisecond))
	assert.False(t, h.admit(r, k, t0.Add(600*time.Millisecond)), "100 % within the second: held back")
	assert.True(t, h.admit(r, k, t0.Add(2500*time.Millisecond)), "two seconds later: served")
}
