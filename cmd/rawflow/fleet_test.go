//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/loadtest"
	"github.com/rawflow/rawflow/swarm"
)

// startFleet starts two gateways on one real Redis and one origin, the second after the
// first listed segments, and waits until they list the same ones.
func startFleet(t *testing.T, r *runner) (first, second *gatewayNode) {
	t.Helper()
	origin := r.demoOrigin(t)
	redisURL := redistest.Start(t)
	startGateway := func() *gatewayNode {
		return r.redisGateway(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PeerKey: []byte("fleet-secret")}, origin.url, redisURL)
	}
	first = startGateway()
	awaitSegments(t, first.url, 4, 30*time.Second) // the second starts later on
	second = startGateway()
	sameSegments(t, first.url, second.url, 3)
	return first, second
}

// TestFleetTwoGatewaysOneRedis: two gateways on one real Redis and one origin, the second
// started after the first listed segments. They list the same bytes under the same names
// and numbers, so viewers behind a round-robin load balancer (every request to the other
// gateway, no stickiness) play without an error, next to viewers of one gateway; all of
// them form one swarm: a segment is fetched from the fleet about once in all.
func TestFleetTwoGatewaysOneRedis(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("25 s run")
	}
	r := newRunner(t)
	first, second := startFleet(t, r)
	gws := []*gatewayNode{first, second}
	lb := roundRobin(t, first.url, second.url)
	reports := make([]loadtest.Report, 2)
	var runs sync.WaitGroup
	for i, target := range []string{lb, second.url} {
		runs.Go(func() {
			var stdout, stderr bytes.Buffer
			err := run(r.ctx, []string{"swarm", "--gateway", target, "--channel", "tv", "--viewers", "3", "--direct", "1", "--duration", "25s", "--json"}, &stdout, &stderr)
			if assert.NoError(t, err, stderr.String()) {
				assert.NoError(t, json.Unmarshal(stdout.Bytes(), &reports[i]), stdout.String())
			}
		})
	}
	runs.Wait()
	for i, rep := range reports {
		t.Logf("run %d: %+v", i, rep)
		assert.Zero(t, rep.PlayerErrors, "failed player requests, run %d", i)
		assert.Zero(t, rep.Stalls+rep.DirectStalls, "stalls, run %d", i)
		assert.Zero(t, rep.IntegrityFailures)
		assert.Greater(t, rep.Segments, 8, "segments played, run %d", i)
		assert.Positive(t, rep.BytesFromPeers, "run %d got bytes from peers", i)
	}
	var served, listed float64
	for _, gw := range gws {
		served += metricValue(t, gw.url, `rawflow_gateway_requests_total{channel="tv",kind="segment"}`)
		listed = max(listed, metricValue(t, gw.url, `rawflow_gateway_segments_listed_total{channel="tv"}`))
	}
	// Direct viewers fetch each segment themselves (2 of them); two separate swarms would
	// add a seeder fetch per gateway.
	t.Logf("the fleet served %v segment requests; each gateway listed up to %v segments", served, listed)
	assert.Positive(t, listed)
	assert.Less(t, served, 3.5*listed, "one swarm across the fleet")
}

// roundRobin starts a load balancer on 127.0.0.1 that sends each request to the next of
// backends in turn, and returns its base URL.
func roundRobin(t *testing.T, backends ...string) string {
	t.Helper()
	var targets []*url.URL
	for _, b := range backends {
		u, err := url.Parse(b)
		require.NoError(t, err)
		targets = append(targets, u)
	}
	var n atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(targets[n.Add(1)%uint64(len(targets))])
		},
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	ln, err := listen("127.0.0.1:0", "load balancer")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestFleetWebRTC: WebRTC across a fleet. Two gateways on one Redis behind a round-robin
// balancer; proxies that reach each other over WebRTC only (--peer-transport ice), their
// event streams and signal POSTs spread over both gateways by the balancer. Signals go
// from gateway to gateway on Redis (checked where their sender's stream is, delivered
// where their recipient's is): links come up, peers share segments over them, nobody
// stalls.
func TestFleetWebRTC(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("20 s run")
	}
	r := newRunner(t)
	first, second := startFleet(t, r)
	lb := roundRobin(t, first.url, second.url)

	var stdout, stderr bytes.Buffer
	err := run(r.ctx, []string{"swarm", "--gateway", lb, "--channel", "tv", "--viewers", "4", "--direct", "1", "--duration", "20s",
		"--peer-transport", "ice", "--json"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	var rep loadtest.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	t.Logf("%+v", rep)
	assert.Zero(t, rep.PlayerErrors)
	assert.Zero(t, rep.Stalls+rep.DirectStalls)
	assert.Zero(t, rep.IntegrityFailures)
	assert.Positive(t, rep.LinksConnected, "WebRTC links came up")
	require.Positive(t, rep.BytesFromPeers, "peers shared segments")
	var overLinks int64
	for _, n := range rep.LinkBytesByType {
		overLinks += n
	}
	assert.GreaterOrEqual(t, overLinks, rep.BytesFromPeers, "every peer byte came over a WebRTC link")
	var forwarded, relayed float64
	for _, gw := range []*gatewayNode{first, second} {
		forwarded += metricValue(t, gw.url, `rawflow_gateway_tracker_signals_total{result="forwarded"}`)
		relayed += metricValue(t, gw.url, `rawflow_gateway_tracker_signals_total{result="relayed"}`)
	}
	t.Logf("signals forwarded between the gateways %v, delivered %v", forwarded, relayed)
	assert.Positive(t, forwarded, "signals crossed the fleet")
	assert.Positive(t, relayed)
}
