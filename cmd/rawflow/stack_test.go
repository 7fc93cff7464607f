//go:build e2e

package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
)

// stack is a running gateway on an in-memory registry and its proxies, each proxy's player
// port wrapped in a recorder. Everything stops when the test ends.
type stack struct {
	gw      *gatewayNode
	channel string
	peers   []*peerNode
	recs    []*recorder
	ctx     context.Context // the proxies run until it ends
	wg      *sync.WaitGroup // and are waited for
}

// startStack starts a gateway with cfg for one channel, waits until it is ready, and
// starts n proxies on it.
func startStack(t *testing.T, cfg gateway.Config, n int) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	gw, err := newGatewayNode("127.0.0.1:0", cfg, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	wg.Go(func() { assert.NoError(t, gw.run(ctx)) })
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)
	st := &stack{gw: gw, channel: cfg.Channels[0].Name, ctx: ctx, wg: &wg}
	for range n {
		st.add(t, peerassist.Config{})
	}
	return st
}

// add starts one more proxy on the stack's gateway, with pcfg (its GatewayURL set here).
func (st *stack) add(t *testing.T, pcfg peerassist.Config) *peerNode {
	t.Helper()
	pcfg.GatewayURL = st.gw.url
	p, err := newPeerNode(t.Context(), "127.0.0.1:0", "127.0.0.1:0", pcfg)
	require.NoError(t, err)
	rec := &recorder{next: p.handler, gw: st.gw.url, channel: st.channel, seen: make(chan struct{}, 1000)}
	p.handler = rec
	st.wg.Go(func() { assert.NoError(t, p.run(st.ctx)) })
	st.peers, st.recs = append(st.peers, p), append(st.recs, rec)
	return p
}

// playAll plays the channel through every proxy with ffmpeg for secs seconds, all at once,
// and asserts that each played without an error.
func (st *stack) playAll(t *testing.T, secs int) {
	t.Helper()
	var played sync.WaitGroup
	for _, p := range st.peers {
		played.Go(func() {
			r := hlstest.Play(t.Context(), t, p.url+"/live/"+st.channel+"/index.m3u8", secs)
			assert.NoError(t, r.Err, r.Stderr)
		})
	}
	played.Wait()
}

// checkRecorders asserts that every proxy served segments, all of them the gateway's bytes.
func (st *stack) checkRecorders(t *testing.T) {
	t.Helper()
	for i, rec := range st.recs {
		rec.mu.Lock()
		assert.Empty(t, rec.bad, "proxy %d served bytes that are not the gateway's", i)
		assert.Positive(t, rec.segments, "proxy %d", i)
		rec.mu.Unlock()
	}
}

// runner runs a test's servers on a context that ends, and is waited for, when the test
// does.
type runner struct {
	ctx context.Context
	wg  sync.WaitGroup
}

func newRunner(t *testing.T) *runner {
	ctx, cancel := context.WithCancel(t.Context())
	r := &runner{ctx: ctx}
	t.Cleanup(func() { cancel(); r.wg.Wait() })
	return r
}

// demoOrigin starts the built-in live source.
func (r *runner) demoOrigin(t *testing.T) *demoOrigin {
	t.Helper()
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	r.wg.Go(func() { _ = origin.run(r.ctx) })
	return origin
}

// gateway starts a gateway with one channel "tv" from source (and cfg's other settings)
// and waits until it is ready.
func (r *runner) gateway(t *testing.T, cfg gateway.Config, source string, reg gateway.Registry) *gatewayNode {
	t.Helper()
	cfg.Channels = []gateway.ChannelConfig{{Name: "tv", Sources: []string{source}}}
	gw, err := newGatewayNode("127.0.0.1:0", cfg, reg)
	require.NoError(t, err)
	r.wg.Go(func() { assert.NoError(t, gw.run(r.ctx)) })
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)
	return gw
}

// redisGateway is gateway on a registry of its own in the Redis at url (closed when the
// test ends), as each gateway of a fleet has.
func (r *runner) redisGateway(t *testing.T, cfg gateway.Config, source, url string) *gatewayNode {
	t.Helper()
	reg, err := swarm.OpenRedis(url, swarm.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	return r.gateway(t, cfg, source, reg)
}
