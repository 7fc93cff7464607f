package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/swarm"
)

// TestFleetTwoGatewaysOneRedis: two gateways on one real Redis and one origin, three
// assisted viewers on each. They form one swarm: a segment is fetched from the fleet about
// once in all (not once per gateway), and viewers of each gateway get bytes from peers.
func TestFleetTwoGatewaysOneRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("25 s run")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (defers run last in, first out)
	defer cancel()
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	wg.Go(func() { _ = origin.run(ctx) })
	url := redistest.Start(t)
	var gws []*gatewayNode
	for range 2 {
		reg, err := swarm.OpenRedis(url, swarm.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Close() })
		cfg := gateway.Config{PeerKey: []byte("fleet-secret"), Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.url}}}}
		gw, err := newGatewayNode("127.0.0.1:0", cfg, reg)
		require.NoError(t, err)
		wg.Go(func() { assert.NoError(t, gw.run(ctx)) })
		waitHTTP(t, gw.url+"/readyz", 20*time.Second)
		gws = append(gws, gw)
	}

	reports := make([]benchReport, len(gws))
	var runs sync.WaitGroup
	for i, gw := range gws {
		runs.Go(func() {
			var stdout, stderr bytes.Buffer
			err := run(ctx, []string{"swarm", "--gateway", gw.url, "--channel", "tv", "--viewers", "3", "--direct", "0", "--duration", "25s", "--json"}, &stdout, &stderr)
			if assert.NoError(t, err, stderr.String()) {
				assert.NoError(t, json.Unmarshal(stdout.Bytes(), &reports[i]), stdout.String())
			}
		})
	}
	runs.Wait()
	var served, listed float64
	for i, gw := range gws {
		r := reports[i]
		t.Logf("gateway %d: %+v", i, r)
		assert.Zero(t, r.Stalls, "stalls, gateway %d", i)
		assert.Zero(t, r.IntegrityFailures)
		assert.Greater(t, r.Segments, 8, "segments played, gateway %d", i)
		assert.Positive(t, r.BytesFromPeers, "viewers of gateway %d got bytes from peers", i)
		served += metricSum(t, gw.url, `rawflow_gateway_requests_total{channel="tv",kind="segment"}`)
		listed = max(listed, metricSum(t, gw.url, `rawflow_gateway_segments_listed_total{channel="tv"}`))
	}
	// Two separate swarms would fetch each segment twice from the fleet (a seeder each).
	t.Logf("the fleet served %v segment requests; each gateway listed up to %v segments", served, listed)
	assert.Positive(t, listed)
	assert.Less(t, served, 1.5*listed, "one swarm across the fleet")
}
