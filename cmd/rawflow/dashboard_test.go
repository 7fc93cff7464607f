//go:build e2e

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
	"github.com/rawflow/rawflow/web"
	"github.com/rawflow/rawflow/web/webtest"
)

// artifactsDir is where tests leave files for people to look at: $RAWFLOW_ARTIFACTS
// (make test sets it to ./artifacts), else a directory under the system's temp dir.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RAWFLOW_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "rawflow-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// TestDashboardInBrowser: the real stack (an ffmpeg live origin, a gateway, three proxies in
// two groups, each played by ffmpeg for 14 s), then Chromium: the dashboard loads without a
// console error, its figures match the API, every chart draws, live updates arrive, the
// breakdown tables match the API and the CSV export answers; the preview page plays the
// channel through a proxy with hls.js. The screenshot is saved as an artifact.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	origin := hlstest.StartOrigin(t, 4)
	stk := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PollInterval: 500 * time.Millisecond, StatsFlushInterval: 500 * time.Millisecond,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.URL}}}}, 0)
	gw := stk.gw
	for _, group := range []string{"paris", "paris", "lyon"} {
		stk.add(t, peerassist.Config{Group: group})
	}
	peers := stk.peers
	stk.playAll(t, 14)
	st := gatewayStats(t, gw.url, "tv")
	require.Positive(t, st.BytesFromPeers, "the two proxies of one group shared segments")
	assert.Equal(t, int64(len(peers)), st.Startups, "one startup per player, seen by its proxy (ffmpeg asks for bytes=0-)")

	checkGrafanaMetrics(t, gw.url+"/metrics", peers[0].url+"/metrics")

	shot := filepath.Join(artifactsDir(t), "dashboard.png")
	preview := gw.url + "/preview/tv?src=" + url.QueryEscape(peers[0].url+"/live/tv/index.m3u8")
	res := webtest.RunBrowser(t, map[string]string{"DASHBOARD_URL": gw.url, "PREVIEW_URL": preview,
		"SCREENSHOT": shot, "CHANNEL": "tv", "MIN_GENERATIONS": "2"})
	require.True(t, res.OK, res.Error)
	assert.FileExists(t, shot)
	assert.NotEmpty(t, res.FiguresCompared)
	require.Len(t, res.Points, 4, "offload, traffic, viewers, qoe")
	for chart, n := range res.Points {
		assert.Positive(t, n, "chart %s", chart)
	}
	require.NotNil(t, res.Preview)
	assert.Equal(t, "hls.js", res.Preview.Engine)
	assert.GreaterOrEqual(t, res.Preview.Advanced, 2.0)
	t.Logf("screenshot %s; page weight %d bytes in %d requests; %s", shot, res.PageWeightBytes, len(res.PageRequests), res.Raw)
}

// checkGrafanaMetrics asserts that every metric deploy/grafana/rawflow.json queries is
// exported by the gateway or the proxy (scraped at these URLs).
func checkGrafanaMetrics(t *testing.T, urls ...string) {
	t.Helper()
	dash, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "rawflow.json"))
	require.NoError(t, err)
	var scraped strings.Builder
	for _, u := range urls {
		code, body := fetch(t, u)
		require.Equal(t, 200, code, u)
		scraped.Write(body)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`rawflow_[a-z_]+`).FindAllString(string(dash), -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			m = strings.TrimSuffix(m, suffix)
		}
		names[m] = true
	}
	require.GreaterOrEqual(t, len(names), 15)
	for name := range names {
		assert.Contains(t, scraped.String(), "\n"+name, "the Grafana dashboard queries %s", name)
	}
}

// TestDashboardSharesGatewayRouter: one router serves the gateway's routes and the
// dashboard's; the dashboard reads the gateway's channels and registry, with its settings
// from the node, and its errors come out of the gateway's error handler as they were.
func TestDashboardSharesGatewayRouter(t *testing.T) {
	t.Parallel()
	reg := swarm.NewMemory(swarm.Options{})
	gw, err := newGatewayNode("127.0.0.1:0", gateway.Config{PeerAddrs: swarm.AddrLoopback, Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/live.m3u8"}}}}, reg)
	require.NoError(t, err)
	require.NoError(t, gw.ln.Close())
	gw.dashboard = web.Config{PricePerGB: 0.1, Currency: "EUR"}
	h, err := gw.handler()
	require.NoError(t, err)
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	require.NoError(t, reg.AddStats(t.Context(), "tv", swarm.Counters{BytesFromPeers: 2e9, BytesUploaded: 2e9}))

	do := func(method, path string) *http.Response {
		req, rerr := http.NewRequestWithContext(t.Context(), method, front.URL+path, nil)
		require.NoError(t, rerr)
		resp, rerr := http.DefaultClient.Do(req)
		require.NoError(t, rerr)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := do(http.MethodGet, "/api/v1/overview")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ov web.Overview
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ov))
	require.Len(t, ov.Channels, 1)
	assert.Equal(t, "tv", ov.Channels[0].Name)
	assert.Equal(t, "EUR", ov.Currency)
	assert.InDelta(t, 0.2, ov.Total.MoneySaved, 1e-9)

	for _, c := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodHead, "/preview/tv", http.StatusOK},
		{http.MethodGet, "/ui/app.js", http.StatusOK},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/ui/app.js", http.StatusMethodNotAllowed},
		{http.MethodGet, "/ui/missing.js", http.StatusNotFound},
		{http.MethodGet, "/api/v1/channels/tv/series", http.StatusOK},
		{http.MethodGet, "/api/v1/channels/nope/series", http.StatusNotFound},
		{http.MethodGet, "/api/v1/channels/tv/series?step=x", http.StatusBadRequest},
		{http.MethodGet, swarm.PathStats, http.StatusOK},
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/metrics", http.StatusOK},
	} {
		resp := do(c.method, c.path)
		assert.Equal(t, c.status, resp.StatusCode, "%s %s", c.method, c.path)
		if c.status >= 400 {
			assert.Equal(t, "public, max-age=1", resp.Header.Get("Cache-Control"), "%s %s: the gateway's error handler", c.method, c.path)
		}
	}

	gw.dashboard = web.Config{Currency: "DOUBLOONS"}
	_, err = gw.handler()
	assert.ErrorContains(t, err, "currency")
}
