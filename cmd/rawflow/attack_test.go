//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/loadtest/simplayer"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
	"github.com/rawflow/rawflow/web"
)

// TestStatsAttack (issue #17): against a live swarm of 8 simulated viewers on real Redis,
// one client inflates its reports, sends deltas near int64's max, reports the honest
// uploaders its two identities' plans named, and opens identities until refused. The
// gateway's offload stays within 0.05 of what the honest viewers measured, no honest
// uploader is banned (the attacker's identities advertise an address nobody answers on, so
// honest proxies whose plans name them may rightly get them banned), and the honest players
// see no error.
func TestStatsAttack(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); waitStopped(t, &wg, 15*time.Second) })
	quiet := slog.New(slog.DiscardHandler)
	bans := &banLog{}
	reg, err := swarm.OpenRedis(redistest.Start(t), swarm.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	wg.Go(func() { _ = origin.run(ctx) })
	const ceiling = 16
	const attackerAddr = "127.0.0.1:9" // the attacker's identities' advertised address
	gw, err := newGatewayNode("127.0.0.1:0", gateway.Config{PeerAddrs: swarm.AddrLoopback, Logger: slog.New(bans), ReportInterval: time.Second,
		PollInterval: 500 * time.Millisecond, PeersPerAddress: ceiling,
		Channels: []gateway.ChannelConfig{{Name: hostileChannel, Sources: []string{origin.url}}}}, reg)
	require.NoError(t, err)
	wg.Go(func() { assert.NoError(t, gw.run(ctx)) })
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)

	var peers []*peerNode
	var players []*simplayer.Player
	for i := range 8 {
		p, perr := newPeerNode(t.Context(), "127.0.0.1:0", fmt.Sprintf("127.0.0.%d:0", 2+i), peerassist.Config{GatewayURL: gw.url, Logger: quiet})
		require.NoError(t, perr)
		wg.Go(func() { assert.NoError(t, p.run(ctx)) })
		pl := simplayer.New(simplayer.Config{URL: p.url + "/live/" + hostileChannel + "/index.m3u8"})
		wg.Go(func() { _ = pl.Run(ctx) })
		peers, players = append(peers, p), append(players, pl)
	}
	sleepCtx(ctx, 15*time.Second) // the swarm forms

	// Two identities of the attacker, on one address, each with its plan.
	type ident struct {
		hello swarm.Hello
		plan  swarm.Plan
	}
	openStream := func(leech bool) (int, *ident) {
		sub := swarm.Subscription{Channel: hostileChannel, Renditions: []string{""}, Leech: leech}
		if !leech {
			sub.Addr = attackerAddr
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.url+swarm.PathEvents+"?"+sub.Query().Encode(), nil)
		resp, derr := http.DefaultClient.Do(req)
		require.NoError(t, derr)
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		t.Cleanup(func() { resp.Body.Close() })
		id := &ident{}
		r := swarm.NewEventReader(resp.Body)
		for range 10 {
			ev, rerr := r.Next()
			require.NoError(t, rerr)
			switch ev.Name {
			case swarm.EventHello:
				require.NoError(t, json.Unmarshal(ev.Data, &id.hello))
			case swarm.EventPlan:
				require.NoError(t, json.Unmarshal(ev.Data, &id.plan))
			}
			if id.plan.Stripes != nil {
				break
			}
		}
		return resp.StatusCode, id
	}
	report := func(id *ident, rep swarm.ReportRequest) {
		rep.PeerID, rep.Token, rep.Channel = id.hello.PeerID, id.hello.Token, hostileChannel
		body, _ := json.Marshal(rep)
		resp, perr := http.Post(gw.url+swarm.PathReport, "application/json", bytes.NewReader(body))
		require.NoError(t, perr)
		resp.Body.Close()
	}
	_, a := openStream(false)
	_, b := openStream(false)
	require.NotNil(t, a)
	require.NotNil(t, b)
	// Inflate, then overflow.
	report(a, swarm.ReportRequest{Stats: swarm.Counters{BytesFromPeers: 1e15, BytesUploaded: 1e15, SegmentsFromPeers: 1e6}})
	report(a, swarm.ReportRequest{Stats: swarm.Counters{BytesFromPeers: math.MaxInt64 - 1, BytesFromGateway: math.MaxInt64 - 1,
		BytesUploaded: math.MaxInt64 - 1, Stalls: math.MaxInt64 - 1}})
	// Two identities report every honest uploader their plans named.
	for _, id := range []*ident{a, b} {
		var victims []string
		for _, sp := range id.plan.Stripes {
			for _, src := range sp.Sources {
				victims = append(victims, src.ID)
			}
		}
		report(id, swarm.ReportRequest{Banned: victims})
	}
	// Sybil joins: identities until refused.
	refused := false
	for range 4 * ceiling {
		code, id := openStream(true)
		if id == nil {
			refused = code == http.StatusTooManyRequests
			break
		}
	}
	assert.True(t, refused, "identities past the ceiling are refused")
	st, err := reg.Stats(ctx, hostileChannel)
	require.NoError(t, err)
	assert.LessOrEqual(t, st.ActivePeers, ceiling+8, "active peers bounded (honest proxies share 127.0.0.1 for their calls)")

	sleepCtx(ctx, 40*time.Second)
	var honest swarm.Counters
	for _, p := range peers {
		honest.Add(p.proxy.Status().Channels[hostileChannel].Counters)
	}
	var stats swarm.StatsResponse
	resp, err := http.Get(gw.url + swarm.PathStats)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&stats))
	resp.Body.Close()
	got := stats.Channels[hostileChannel]
	t.Logf("honest offload %.3f (%+v); gateway offload %.3f, unconfirmed %d, banned %d", honest.Offload(), honest, got.Offload,
		got.UnconfirmedPeerBytes, got.PeersBanned)
	assert.InDelta(t, honest.Offload(), got.Offload, 0.05, "the gateway's offload is the honest viewers'")
	for _, addr := range bans.addrs() {
		assert.Equal(t, attackerAddr, addr, "no honest uploader banned")
	}
	assert.Len(t, bans.addrs(), int(got.PeersBanned), "every ban counted, and logged with its address")
	// The dashboard's headline (the last minute) and its savings (all time) are not inflated.
	var ov web.Overview
	resp, err = http.Get(gw.url + "/api/v1/overview")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ov))
	resp.Body.Close()
	t.Logf("dashboard: offload %.3f, bytes saved %d (honest viewers got %d from peers)", ov.Total.Offload, ov.Total.BytesSaved, honest.BytesFromPeers)
	assert.LessOrEqual(t, ov.Total.Offload, honest.Offload()+0.05, "the dashboard's offload")
	// The attacker's MaxInt64 claims are cut to what a peer could have played since its last
	// report (here about one window, ~0.6 MB, per identity that claimed): a few per cent.
	assert.LessOrEqual(t, ov.Total.BytesSaved, honest.BytesFromPeers+honest.BytesFromPeers/10, "the dashboard's savings")
	assert.Greater(t, honest.Offload(), 0.5, "the swarm keeps its offload")
	for i, pl := range players {
		assert.Zero(t, pl.Result().Errors, "player %d", i)
	}
}

// banLog is a slog handler that keeps the addresses of the peers the tracker banned (its
// "peer banned as an uploader" records) and drops everything else.
type banLog struct {
	mu     sync.Mutex
	banned []string
}

func (*banLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *banLog) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h *banLog) WithGroup(string) slog.Handler          { return h }

func (h *banLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "peer banned as an uploader") {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "addr" {
			h.mu.Lock()
			h.banned = append(h.banned, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *banLog) addrs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.banned)
}

// sleepCtx waits d or until ctx ends: the swarm plays in real time.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
