package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/swarm"
)

// statsGateway is a gateway on the given registry, with its handler on a test server.
func statsGateway(t *testing.T, reg Registry) (*Server, string) {
	t.Helper()
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/live.m3u8"}}}}, reg)
	require.NoError(t, err)
	for i := range 8 { // what it listed bounds what its proxies may report (tracker)
		s.tracker.Published("tv", swarm.SegmentEvent{Rendition: "r0", Seq: uint64(i), Size: 10_000, DurationMS: 2000})
	}
	front := httptest.NewServer(s.Handler())
	t.Cleanup(front.Close)
	return s, front.URL
}

// TestStatsTwoGatewaysOneRedis: two gateways of a fleet write their proxies' reports, their
// egress and their viewers to one Redis; the registry's totals and buckets, which the
// dashboard reads (package web), sum both, and so does either's offload gauge.
func TestStatsTwoGatewaysOneRedis(t *testing.T) {
	url := redistest.Start(t)
	open := func() *swarm.Redis {
		reg, err := swarm.OpenRedis(url, swarm.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { reg.Close() })
		return reg
	}
	reg := open()
	gw1, base1 := statsGateway(t, reg)
	gw2, base2 := statsGateway(t, open())

	join(t, base1, swarm.Subscription{Channel: "tv", Addr: ":9001", Group: "paris"}, swarm.ReportRequest{
		Stats:      swarm.Counters{BytesFromGateway: 1000, BytesFromPeers: 3000, BytesUploaded: 7000, Stalls: 1, Startups: 2, StartupMillis: 1000},
		Renditions: map[string]swarm.Counters{"r0": {BytesFromGateway: 1000, BytesFromPeers: 3000}},
		FedBy:      map[string]int64{"lyon": 2000, "paris": 1000}})
	join(t, base2, swarm.Subscription{Channel: "tv", Addr: ":9002", Group: "lyon"}, swarm.ReportRequest{
		Stats: swarm.Counters{BytesFromPeers: 6000, BytesUploaded: 2000, Startups: 1, StartupMillis: 400}, FedBy: map[string]int64{"paris": 6000}})
	gw1.channelMap()["tv"].egress.Add(700)
	gw2.channelMap()["tv"].egress.Add(300)
	gw1.flushEgress(t.Context())
	gw2.flushEgress(t.Context())
	gw1.channelMap()["tv"].direct.seen("10.0.0.1", time.Now())
	gw2.channelMap()["tv"].direct.seen("10.0.0.2", time.Now())
	gw2.channelMap()["tv"].direct.seen("10.0.0.3", time.Now())
	gw1.sampleViewers(t.Context())
	gw2.sampleViewers(t.Context())

	st, err := reg.Stats(t.Context(), "tv")
	require.NoError(t, err)
	assert.Equal(t, 2, st.ActivePeers)
	assert.Equal(t, int64(9000), st.BytesFromPeers)
	assert.Equal(t, int64(1000), st.GatewayEgressBytes)

	now := time.Now()
	bs, err := reg.Buckets(t.Context(), "tv", now.Add(-time.Minute), now, swarm.BucketStep10)
	require.NoError(t, err)
	var sum swarm.Bucket
	for _, b := range bs {
		sum.Merge(b)
	}
	assert.Equal(t, swarm.Counters{BytesFromGateway: 1000, BytesFromPeers: 9000, BytesUploaded: 9000, GatewayEgressBytes: 1000,
		Stalls: 1, Startups: 3, StartupMillis: 1400}, sum.Counters)
	assert.Equal(t, map[string]swarm.Counters{"r0": {BytesFromGateway: 1000, BytesFromPeers: 3000}}, sum.Renditions,
		"the gateways' egress has no rendition here: no ingest ran")
	assert.Equal(t, map[string]swarm.Counters{"lyon": {BytesFromPeers: 6000, BytesUploaded: 2000, Startups: 1, StartupMillis: 400},
		"paris": {BytesFromGateway: 1000, BytesFromPeers: 3000, BytesUploaded: 7000, Stalls: 1, Startups: 2, StartupMillis: 1000}}, sum.Groups)
	assert.Equal(t, []swarm.Feed{{From: "lyon", To: "paris", Bytes: 2000}, {From: "paris", To: "lyon", Bytes: 6000}, {From: "paris", To: "paris", Bytes: 1000}}, sum.Feeds)
	assert.Equal(t, int64(2), sum.ViewersAssisted)
	assert.Equal(t, int64(3), sum.ViewersDirect, "each gateway's direct players add up")

	for _, gw := range []*Server{gw1, gw2} {
		assert.InDelta(t, 0.9, gw.channelMap()["tv"].offload.Load().(float64), 1e-9, "the last minute's offload, fleet-wide")
	}
}

// join opens an event stream for sub on the gateway at base (kept open until the test
// ends) and reports stats as the peer it was given: what a proxy does.
func join(t *testing.T, base string, sub swarm.Subscription, rep swarm.ReportRequest) {
	t.Helper()
	if sub.Renditions == nil {
		sub.Renditions = []string{""}
	}
	resp, err := http.Get(base + swarm.PathEvents + "?" + sub.Query().Encode())
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ev, err := swarm.NewEventReader(resp.Body).Next()
	require.NoError(t, err)
	var hello swarm.Hello
	require.NoError(t, json.Unmarshal(ev.Data, &hello))
	rep.PeerID, rep.Token, rep.Channel = hello.PeerID, hello.Token, sub.Channel
	body, err := json.Marshal(rep)
	require.NoError(t, err)
	r, err := http.Post(base+swarm.PathReport, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusNoContent, r.StatusCode)
}
