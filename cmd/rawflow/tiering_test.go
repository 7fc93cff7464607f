//go:build e2e

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/loadtest"
	"github.com/rawflow/rawflow/swarm"
)

// TestTiering: an edge gateway whose origin is a mid-tier gateway, which pulls from the
// built-in source. Viewers play the edge through proxies; the edge lists the mid's
// segments byte for byte under the same names, and the mid serves each segment to the
// edge about once, however many viewers watch.
func TestTiering(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("20 s run")
	}
	r := newRunner(t)
	origin := r.demoOrigin(t)
	mid := r.gateway(t, gateway.Config{PeerAddrs: swarm.AddrLoopback}, origin.url, swarm.NewMemory(swarm.Options{}))
	edge := r.gateway(t, gateway.Config{PeerAddrs: swarm.AddrLoopback}, mid.url+"/live/tv/index.m3u8", swarm.NewMemory(swarm.Options{}))

	var stdout, stderr bytes.Buffer
	err := run(r.ctx, []string{"swarm", "--gateway", edge.url, "--channel", "tv", "--viewers", "4", "--direct", "1", "--duration", "20s", "--json"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	var rep loadtest.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	t.Logf("report: %+v", rep)
	assert.Zero(t, rep.Stalls, "stalls")
	assert.Zero(t, rep.NotStarted)
	assert.Zero(t, rep.IntegrityFailures)
	assert.Greater(t, rep.Segments, 10, "segments played")

	// Each segment the edge listed was fetched from the mid once (a retry at most), while
	// five viewers played it: the edge carries the audience, not the mid.
	edgeListed := metricValue(t, edge.url, `rawflow_gateway_segments_listed_total{channel="tv"}`)
	midServed := metricValue(t, mid.url, `rawflow_gateway_requests_total{channel="tv",kind="segment"}`)
	listed := 0
	for _, seg := range gatewayWindow(t, edge.url).Segments {
		name := seg.Name
		e, _, onEdge := gatewayObject(edge.url, "/live/tv/"+name)
		m, _, onMid := gatewayObject(mid.url, "/live/tv/"+name)
		if assert.True(t, onEdge, name) && assert.True(t, onMid, "the edge lists %s, which the mid does not", name) {
			assert.Equal(t, m, e, name)
			listed++
		}
	}
	assert.Positive(t, listed)
	t.Logf("edge listed %v segments; the mid served %v segment requests", edgeListed, midServed)
	assert.Positive(t, edgeListed)
	assert.LessOrEqual(t, midServed, edgeListed*1.2+2)
}

// metricValue returns the value of one series of the gateway's /metrics; a series that is
// not there fails the test.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	require.NoError(t, sc.Err())
	require.Failf(t, "no such series", "%s/metrics has no %s", base, series)
	return 0
}
