package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/swarm"
	"github.com/rawflow/rawflow/web"
)

// statsStore is the part of a registry (swarm.Memory, swarm.Redis) the tests read.
type statsStore interface {
	Stats(ctx context.Context, channel string) (swarm.ChannelStats, error)
	Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]swarm.Bucket, error)
}

// registryStats reads a registry's stats of the given channels, as a gateway's dashboard
// does.
type registryStats struct {
	reg      statsStore
	channels []string
}

func (r registryStats) Channels() []string { return r.channels }

func (r registryStats) known(channel string) error {
	if !slices.Contains(r.channels, channel) {
		return fmt.Errorf("%w %q", web.ErrUnknownChannel, channel)
	}
	return nil
}

func (r registryStats) Totals(ctx context.Context, channel string) (swarm.ChannelStats, error) {
	if err := r.known(channel); err != nil {
		return swarm.ChannelStats{}, err
	}
	return r.reg.Stats(ctx, channel)
}

func (r registryStats) Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]swarm.Bucket, error) {
	if err := r.known(channel); err != nil {
		return nil, err
	}
	return r.reg.Buckets(ctx, channel, from, to, step)
}

// serveDashboard serves a dashboard of stats on a test server and returns its URL.
func serveDashboard(t *testing.T, stats web.Stats, cfg web.Config) string {
	t.Helper()
	d, err := web.New(stats, cfg)
	require.NoError(t, err)
	front := httptest.NewServer(d.Handler())
	t.Cleanup(front.Close)
	return front.URL
}

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, body := httpGet(t, url)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.NoError(t, json.Unmarshal([]byte(body), v))
}

// reported writes to reg what a gateway writes for a proxy's join and report (its tracker)
// and for its own egress and viewer counts (stats.go).
type reported struct {
	reg interface {
		Subscribe(ctx context.Context, p swarm.Peer, renditions []string) (map[string]int, error)
		AddStats(ctx context.Context, channel string, c swarm.Counters) error
		AddSample(ctx context.Context, channel string, at time.Time, s swarm.Sample) error
	}
	t *testing.T
}

func (r reported) announce(id string, group string, c swarm.Counters, renditions map[string]swarm.Counters, fedBy map[string]int64) {
	ctx := r.t.Context()
	_, err := r.reg.Subscribe(ctx, swarm.Peer{ID: strings.Repeat(id, 32), Channel: "tv", Addr: "10.0.0.1:9000", Group: group}, []string{""})
	require.NoError(r.t, err)
	require.NoError(r.t, r.reg.AddStats(ctx, "tv", c))
	require.NoError(r.t, r.reg.AddSample(ctx, "tv", time.Now(), swarm.Sample{Group: group, Counters: c, Renditions: renditions, FedBy: fedBy}))
}

// paths records how a group's peer bytes travelled.
func (r reported) paths(group string, paths map[string]int64) {
	require.NoError(r.t, r.reg.AddSample(r.t.Context(), "tv", time.Now(), swarm.Sample{Group: group, Paths: paths}))
}

func (r reported) egress(n int64) {
	ctx := r.t.Context()
	c := swarm.Counters{GatewayEgressBytes: n}
	require.NoError(r.t, r.reg.AddStats(ctx, "tv", c))
	require.NoError(r.t, r.reg.AddSample(ctx, "tv", time.Now(), swarm.Sample{Gateway: true, Counters: c}))
}

func (r reported) viewers(gatewayID string, assisted, direct int64) {
	v := &swarm.Viewers{GatewayID: gatewayID, Assisted: assisted, Direct: direct}
	require.NoError(r.t, r.reg.AddSample(r.t.Context(), "tv", time.Now(), swarm.Sample{Gateway: true, Viewers: v}))
}

// TestAPITwoGatewaysOneRedis: two gateways of a fleet write reports and egress to one
// Redis; the API of either sums both. (What a gateway writes is gateway's own test:
// TestStatsTwoGatewaysOneRedis.)
func TestAPITwoGatewaysOneRedis(t *testing.T) {
	url := redistest.Start(t)
	open := func() *swarm.Redis {
		reg, err := swarm.OpenRedis(url, swarm.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { reg.Close() })
		return reg
	}
	reg1, reg2 := open(), open()
	gw1, gw2 := reported{reg1, t}, reported{reg2, t}
	// Paris uploaded 6000 to lyon and 1000 to itself, lyon 2000 to paris: every peer byte is
	// corroborated by an upload.
	gw1.announce("a", "paris", swarm.Counters{BytesFromGateway: 1000, BytesFromPeers: 3000, BytesUploaded: 7000, Stalls: 1, Startups: 2, StartupMillis: 1000},
		map[string]swarm.Counters{"r0": {BytesFromGateway: 1000, BytesFromPeers: 3000}}, map[string]int64{"lyon": 2000, "paris": 1000})
	gw2.announce("b", "lyon", swarm.Counters{BytesFromPeers: 6000, BytesUploaded: 2000, Startups: 1, StartupMillis: 400}, nil, map[string]int64{"paris": 6000})
	gw1.paths("paris", map[string]int64{"direct": 2000, "srflx": 1000})
	gw2.paths("lyon", map[string]int64{"relay": 6000})
	gw1.egress(700)
	gw2.egress(300)
	gw1.viewers("gw1", 2, 1)
	gw2.viewers("gw2", 2, 2)

	cfg := web.Config{PricePerGB: 0.05}
	for _, base := range []string{serveDashboard(t, registryStats{reg1, []string{"tv"}}, cfg), serveDashboard(t, registryStats{reg2, []string{"tv"}}, cfg)} {
		var ov web.Overview
		getJSON(t, base+"/api/v1/overview", &ov)
		require.Len(t, ov.Channels, 1)
		tv := ov.Channels[0]
		assert.Equal(t, "tv", tv.Name)
		assert.InDelta(t, 9000.0/10000, tv.Offload, 1e-9)
		assert.Equal(t, int64(2), tv.ViewersAssisted)
		assert.Equal(t, int64(3), tv.ViewersDirect, "each gateway's direct players add up")
		assert.Equal(t, int64(1), tv.Stalls)
		assert.Equal(t, int64(1400/3), tv.StartupMillis)
		assert.Equal(t, int64(9000), tv.BytesSaved)
		assert.Zero(t, tv.UnconfirmedPeerBytes, "uploads corroborate every peer byte")
		assert.InDelta(t, 9000/1e9*0.05, tv.MoneySaved, 1e-12)
		assert.Positive(t, tv.GatewayMbps)
		assert.Equal(t, tv.Offload, ov.Total.Offload)
		assert.Equal(t, int64(60), ov.WindowSeconds)
		assert.Equal(t, 0.05, ov.PricePerGB)
		assert.Equal(t, "USD", ov.Currency)

		var series web.Series
		getJSON(t, base+"/api/v1/channels/tv/series", &series)
		assert.Equal(t, int64(10), series.Step)
		var gwBytes, peerBytes int64
		for _, p := range series.Points {
			gwBytes += p.GatewayBytes
			peerBytes += p.PeerBytes
		}
		assert.Equal(t, int64(1000), gwBytes, "egress of both gateways")
		assert.Equal(t, int64(9000), peerBytes)

		var bd web.Breakdown
		getJSON(t, base+"/api/v1/channels/tv/breakdown", &bd)
		assert.Equal(t, []web.Split{{Name: "r0", GatewayBytes: 1000, PeerBytes: 3000, Offload: 0.75}}, bd.Renditions)
		assert.Equal(t, []web.Split{{Name: "lyon", PeerBytes: 6000, Offload: 1}, {Name: "paris", GatewayBytes: 1000, PeerBytes: 3000, Offload: 0.75}}, bd.Groups)
		assert.Equal(t, []swarm.Feed{{From: "lyon", To: "paris", Bytes: 2000}, {From: "paris", To: "lyon", Bytes: 6000}, {From: "paris", To: "paris", Bytes: 1000}}, bd.Feeds)
		assert.Equal(t, []swarm.PathBytes{{Path: "relay", Group: "lyon", Bytes: 6000}, {Path: "direct", Group: "paris", Bytes: 2000},
			{Path: "srflx", Group: "paris", Bytes: 1000}}, bd.Paths, "how each group's peer bytes travelled, across both gateways")
	}
}

// TestAPIFiguresNeedUploads: a client that reports peer bytes nobody uploaded (a leech
// claiming 1e15 bytes) moves none of the dashboard's figures: offload, bytes and money
// saved, the series and the breakdown count peer bytes only as far as uploads corroborate
// them, and the claim shows as unconfirmed.
func TestAPIFiguresNeedUploads(t *testing.T) {
	reg := swarm.NewMemory(swarm.Options{})
	gw := reported{reg, t}
	gw.announce("a", "paris", swarm.Counters{BytesFromGateway: 1000, BytesFromPeers: 3000}, map[string]swarm.Counters{"r0": {BytesFromGateway: 1000, BytesFromPeers: 3000}}, nil)
	gw.announce("b", "paris", swarm.Counters{BytesUploaded: 3000}, nil, nil)
	gw.egress(1000)
	base := serveDashboard(t, registryStats{reg, []string{"tv"}}, web.Config{PricePerGB: 0.05})
	honest := func() (web.Overview, web.Breakdown) {
		var ov web.Overview
		getJSON(t, base+"/api/v1/overview", &ov)
		var bd web.Breakdown
		getJSON(t, base+"/api/v1/channels/tv/breakdown", &bd)
		return ov, bd
	}
	before, bdBefore := honest()
	require.InDelta(t, 0.75, before.Total.Offload, 1e-9)

	const claim = int64(1e15)
	gw.announce("c", "paris", swarm.Counters{BytesFromPeers: claim}, map[string]swarm.Counters{"r0": {BytesFromPeers: claim}}, nil)
	ov, bd := honest()
	tv := ov.Channels[0]
	assert.InDelta(t, 0.75, ov.Total.Offload, 1e-9, "the lie does not raise the headline")
	assert.InDelta(t, 0.75, tv.Offload, 1e-9)
	assert.Equal(t, int64(3000), tv.BytesSaved)
	assert.InDelta(t, 3000/1e9*0.05, tv.MoneySaved, 1e-12)
	assert.Equal(t, claim, tv.UnconfirmedPeerBytes, "the claim is shown as unconfirmed")
	var series web.Series
	getJSON(t, base+"/api/v1/channels/tv/series", &series)
	var peerBytes int64
	for _, p := range series.Points {
		peerBytes += p.PeerBytes
		assert.LessOrEqual(t, p.Offload, 0.75+1e-9)
	}
	assert.Equal(t, int64(3000), peerBytes)
	require.Len(t, bd.Renditions, 1)
	assert.InDelta(t, bdBefore.Renditions[0].Offload, bd.Renditions[0].Offload, 0.01, "rendition rows are cut to the confirmed share")
	assert.InDelta(t, 3000, bd.Renditions[0].PeerBytes, 10)
}

func TestAPIExportAndEvents(t *testing.T) {
	reg := swarm.NewMemory(swarm.Options{})
	gw := reported{reg, t}
	gw.announce("a", "", swarm.Counters{BytesFromGateway: 10, BytesFromPeers: 30, BytesUploaded: 30}, nil, nil)
	gw.egress(10)
	base := serveDashboard(t, registryStats{reg, []string{"tv"}}, web.Config{EventsInterval: 50 * time.Millisecond})

	now := time.Now().Unix()
	resp, body := httpGet(t, base+"/api/v1/channels/tv/export.csv?from="+strconv.FormatInt(now-120, 10)+"&to="+strconv.FormatInt(now, 10)+"&step=60")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	lines := strings.Split(strings.TrimSpace(body), "\n")
	assert.Equal(t, "time,gateway_bytes,peer_bytes,uploaded_bytes,offload,viewers_assisted,viewers_direct,stalls,startups,startup_ms,integrity_failures,peers_banned,tracker_refused", lines[0])
	assert.Len(t, lines, 1+3, "one row per minute of the range")
	assert.Contains(t, body, ",10,30,30,0.7500,")

	for _, bad := range []string{"?from=x", "?from=100&to=50", "?step=-1", "?from=0&to=99999999"} {
		for _, route := range []string{"series", "breakdown", "export.csv"} {
			resp, _ = httpGet(t, base+"/api/v1/channels/tv/"+route+bad)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, route+bad)
		}
	}
	for _, route := range []string{"series", "breakdown", "export.csv"} {
		resp, _ = httpGet(t, base+"/api/v1/channels/nope/"+route)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, route)
	}

	// Events: the overview at once, then every EventsInterval.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/events", nil)
	require.NoError(t, err)
	sse, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer sse.Body.Close()
	assert.Equal(t, "text/event-stream", sse.Header.Get("Content-Type"))
	sc := bufio.NewScanner(sse.Body)
	var events int
	for sc.Scan() && events < 3 {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ov web.Overview
			require.NoError(t, json.Unmarshal([]byte(data), &ov))
			assert.InDelta(t, 0.75, ov.Total.Offload, 1e-9)
			events++
		}
	}
	assert.Equal(t, 3, events)
}

// stubStats is a web.Stats whose methods are its func fields.
type stubStats struct {
	channels func() []string
	totals   func(channel string) (swarm.ChannelStats, error)
	buckets  func(channel string) ([]swarm.Bucket, error)
}

func (s stubStats) Channels() []string { return s.channels() }
func (s stubStats) Totals(_ context.Context, channel string) (swarm.ChannelStats, error) {
	return s.totals(channel)
}
func (s stubStats) Buckets(_ context.Context, channel string, _, _ time.Time, _ time.Duration) ([]swarm.Bucket, error) {
	return s.buckets(channel)
}

// TestAPIErrors: a channel Stats no longer knows is left out of the overview; any other
// error of Stats goes to echo's error handler as it is (its default answers 500).
func TestAPIErrors(t *testing.T) {
	broken := errors.New("registry down")
	stats := stubStats{
		channels: func() []string { return []string{"gone", "tv"} },
		totals: func(channel string) (swarm.ChannelStats, error) {
			if channel == "gone" {
				return swarm.ChannelStats{}, web.ErrUnknownChannel
			}
			return swarm.ChannelStats{ActivePeers: 1}, nil
		},
		buckets: func(string) ([]swarm.Bucket, error) { return nil, nil },
	}
	base := serveDashboard(t, stats, web.Config{})
	var ov web.Overview
	getJSON(t, base+"/api/v1/overview", &ov)
	require.Len(t, ov.Channels, 1)
	assert.Equal(t, "tv", ov.Channels[0].Name)
	assert.Equal(t, int64(1), ov.Total.ViewersAssisted)

	stats.buckets = func(string) ([]swarm.Bucket, error) { return nil, broken }
	base = serveDashboard(t, stats, web.Config{})
	for _, path := range []string{"/api/v1/overview", "/api/v1/channels/tv/series", "/api/v1/channels/tv/breakdown", "/api/v1/channels/tv/export.csv"} {
		resp, _ := httpGet(t, base+path)
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, path)
	}
}

func TestConfig(t *testing.T) {
	_, err := web.New(stubStats{}, web.Config{Currency: "DOUBLOONS"})
	assert.ErrorContains(t, err, "currency")
	assert.NoError(t, web.Config{}.Validate(), "zero values mean defaults")
}
