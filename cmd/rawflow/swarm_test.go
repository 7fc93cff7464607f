//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/loadtest"
	"github.com/rawflow/rawflow/loadtest/simplayer"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
)

// TestSwarmOffload runs `rawflow swarm`: 10 assisted viewers on the built-in source, the
// registry in a real Redis. The offload limit with one gateway fetch per segment is 0.9.
func TestSwarmOffload(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("40 s benchmark run")
	}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"swarm", "--viewers", "10", "--duration", "40s", "--redis", redistest.Start(t), "--json"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	t.Log(stderr.String())
	var r loadtest.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), stdout.String())
	t.Logf("report: %+v", r)
	assert.Equal(t, 10, r.Viewers)
	assert.GreaterOrEqual(t, r.Offload, 0.80, "offload")
	assert.Zero(t, r.Stalls, "stalls")
	assert.Zero(t, r.NotStarted)
	assert.Zero(t, r.IntegrityFailures)
	assert.Greater(t, r.Segments, 15, "segments played")
	assert.LessOrEqual(t, r.GatewayFetchesSeg, 2.0, "gateway fetches per segment")
}

// TestKillNeighbourMidTransfer: a neighbour is killed (its connections cut) while it
// uploads a segment; the proxy that was fetching completes it from the gateway and its
// player does not stall.
func TestKillNeighbourMidTransfer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	wg.Go(func() { _ = origin.run(ctx) })
	cfg := gateway.Config{PeerAddrs: swarm.AddrLoopback, Channels: []gateway.ChannelConfig{{Name: "demo", Sources: []string{origin.url}}}}
	gw, err := newGatewayNode("127.0.0.1:0", cfg, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	wg.Go(func() { assert.NoError(t, gw.run(ctx)) })
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)

	// The victim uploads slowly: 32 KiB at once, then 16 KiB/s, so a ~60 KB segment is
	// still under way a second after its first bytes went out.
	victim, err := newPeerNode(t.Context(), "127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: gw.url, UploadLimit: 16 << 10})
	require.NoError(t, err)
	uploading := make(chan struct{}, 1)
	victim.neighbourHandler = signalWrites(victim.neighbourHandler, uploading)
	survivor, err := newPeerNode(t.Context(), "127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: gw.url})
	require.NoError(t, err)
	vctx, stopVictim := context.WithCancel(ctx)
	wg.Go(func() { _ = victim.run(vctx) })
	wg.Go(func() { assert.NoError(t, survivor.run(ctx)) })

	segs := make(chan struct{}, 1000)
	play := func(ctx context.Context, url string, got chan struct{}) *simplayer.Player {
		p := simplayer.New(simplayer.Config{URL: url + "/live/demo/index.m3u8",
			OnSegment: func(string, []byte) {
				select {
				case got <- struct{}{}:
				default:
				}
			}})
		wg.Go(func() { _ = p.Run(ctx) })
		return p
	}
	play(vctx, victim.url, make(chan struct{}, 1))
	player := play(ctx, survivor.url, segs)

	select {
	case <-uploading:
	case <-time.After(60 * time.Second):
		t.Fatal("the victim never uploaded")
	}
	victim.kill()
	stopVictim()
	for len(segs) > 0 { // count only segments from now on
		<-segs
	}
	before := player.Result().Segments
	for range 5 { // five more segments, about ten seconds of play
		select {
		case <-segs:
		case <-time.After(30 * time.Second):
			t.Fatal("the survivor's player stopped getting segments")
		}
	}
	r := player.Result()
	st := survivor.proxy.Status().Channels["demo"]
	t.Logf("player %+v; proxy %+v", r, st)
	assert.Greater(t, r.Segments, before)
	assert.Zero(t, r.Stalls, "no stall")
	assert.Zero(t, r.Errors, "no failed request")
	assert.Positive(t, st.RangeCompletions+st.NeighbourFailures, "the cut transfer was noticed")
	assert.Zero(t, st.IntegrityFailures)
}

// signalWrites wraps h so that the first write of a response body to a segment request
// signals c.
func signalWrites(h http.Handler, c chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&writeSignal{ResponseWriter: w, c: c}, r)
	})
}

type writeSignal struct {
	http.ResponseWriter
	c    chan struct{}
	once sync.Once
}

func (w *writeSignal) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	if n > 0 {
		w.once.Do(func() {
			select {
			case w.c <- struct{}{}:
			default:
			}
		})
	}
	return n, err
}

func (w *writeSignal) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// TestSwarmRenditionMix: viewers spread over two variants of an ffmpeg ABR ladder form one
// swarm per rendition; nobody stalls and each rendition's swarm carries bytes.
func TestSwarmRenditionMix(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	origin := hlstest.StartABROrigin(t, 3)
	st := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, PollInterval: 500 * time.Millisecond,
		Channels: []gateway.ChannelConfig{{Name: "abr", Sources: []string{origin.URL}}}}, 0)
	r, err := loadtest.Run(t.Context(), loadtest.Config{GatewayURL: st.gw.url, Channel: "abr", Viewers: 6,
		Duration: 20 * time.Second, Ramp: 2 * time.Second, Variants: []int{0, 1}})
	require.NoError(t, err)
	t.Logf("report: %+v", r)
	assert.Zero(t, r.Stalls)
	assert.Zero(t, r.NotStarted)
	assert.Positive(t, r.Offload, "peers carried bytes")
	assert.Zero(t, r.IntegrityFailures)
	assert.Equal(t, 2, r.Renditions, "segments of both variants were played")
}

// TestSwarmDirectOnlyPeerHost: --viewers 0 runs direct viewers only (the baseline without
// peers), and proxies' neighbour ports listen and are advertised on --peer-host.
func TestSwarmDirectOnlyPeerHost(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("benchmark runs")
	}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"swarm", "--viewers", "0", "--direct", "2", "--duration", "6s", "--json"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	var r loadtest.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), stdout.String())
	assert.Equal(t, 0, r.Viewers)
	assert.Equal(t, 2, r.Direct)
	assert.Zero(t, r.NotStarted)
	assert.Zero(t, r.BytesFromPeers+r.BytesFromGateway, "no proxy ran")

	stdout.Reset()
	stderr.Reset()
	err = run(t.Context(), []string{"swarm", "--viewers", "3", "--direct", "0", "--peer-host", "127.0.0.2", "--duration", "12s", "--json"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	r = loadtest.Report{}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), stdout.String())
	assert.Equal(t, 3, r.Viewers)
	assert.Zero(t, r.NotStarted)
	assert.Zero(t, r.NeighbourFailures)
	assert.Positive(t, r.BytesFromPeers, "neighbours reached each other on 127.0.0.2")
}
