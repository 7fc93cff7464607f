//go:build e2e

package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// recorder wraps a proxy's player port: it hashes every body but playlists the player
// receives (segments, init sections, keys) and checks it against the gateway's bytes for
// that name at that moment.
type recorder struct {
	next    http.Handler
	gw      string // the gateway's base URL
	channel string
	seen    chan struct{} // one send per segment served (buffered, never blocks)

	mu         sync.Mutex // guards the following fields
	segments   int
	bad        []string
	renditions map[string]bool // seen in segment paths
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if path.Ext(req.URL.Path) == ".m3u8" || req.Method != http.MethodGet {
		r.next.ServeHTTP(w, req)
		return
	}
	tee := &teeWriter{ResponseWriter: w, h: sha256.New()}
	r.next.ServeHTTP(tee, req)
	etag, size, known := gatewayObject(r.gw, req.URL.Path)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case tee.status != http.StatusOK && tee.status != http.StatusPartialContent:
		r.bad = append(r.bad, fmt.Sprintf("status %d: %s", tee.status, req.URL.Path))
		return
	case !known:
		r.bad = append(r.bad, "unknown to gateway: "+req.URL.Path)
		return
	case tee.n != size: // a part (ffmpeg asks "Range: bytes=0-", answered 206 in full)
		return
	case etag != ingest.ETag(playlist.Digest(tee.h.Sum(nil))):
		r.bad = append(r.bad, "bytes differ from gateway's: "+req.URL.Path)
	}
	r.segments++
	if r.renditions == nil {
		r.renditions = map[string]bool{}
	}
	r.renditions[rendition(req.URL.Path)] = true
	select {
	case r.seen <- struct{}{}:
	default:
	}
}

// gatewayObject asks the gateway at base for the object at a /live path (and query) with
// HEAD, which counts no egress: its ETag (derived from its digest: see ingest.ETag) and its
// size; known is false when the gateway does not answer 200.
func gatewayObject(base, path string) (etag string, size int64, known bool) {
	resp, err := http.Head(base + path)
	if err != nil {
		return "", 0, false
	}
	resp.Body.Close()
	return resp.Header.Get("ETag"), resp.ContentLength, resp.StatusCode == http.StatusOK
}

// rendition returns the rendition of a /live/{channel}[/{rendition}]/{name} path.
func rendition(p string) string {
	parts := strings.Split(strings.TrimPrefix(p, "/live/"), "/")
	if len(parts) == 3 {
		return parts[1]
	}
	return ""
}

type teeWriter struct {
	http.ResponseWriter
	h interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
	status int
	n      int64
}

func (t *teeWriter) WriteHeader(code int) { t.status = code; t.ResponseWriter.WriteHeader(code) }
func (t *teeWriter) Write(b []byte) (int, error) {
	_, _ = t.h.Write(b)
	t.n += int64(len(b))
	return t.ResponseWriter.Write(b)
}

// waitHTTP polls url (bounded) until it answers 200: readiness of a live system, as a probe.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s (last: %v)", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func gatewayStats(t *testing.T, base, channel string) swarm.ChannelReport {
	t.Helper()
	resp, err := http.Get(base + swarm.PathStats)
	require.NoError(t, err)
	defer resp.Body.Close()
	var sr swarm.StatsResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&sr))
	return sr.Channels[channel]
}

// TestEndToEnd: an ffmpeg live origin, a gateway on a real redis-server, three proxies and
// three ffmpeg players. Every player plays ≥ 20 s without error, every proxy takes segments
// from a neighbour, every segment byte reaching a player is the gateway's, and killing one
// proxy mid-run does not interrupt the other two players.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	redisURL := redistest.Start(t)
	origin := hlstest.StartOrigin(t, 3)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, deferred below
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	reg, err := swarm.OpenRedis(redisURL, swarm.Options{})
	require.NoError(t, err)
	defer reg.Close()
	gw, err := newGatewayNode("127.0.0.1:0", gateway.Config{PeerAddrs: swarm.AddrLoopback,
		Channels:       []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.URL}}},
		PollInterval:   500 * time.Millisecond,
		ReportInterval: time.Second,
	}, reg)
	require.NoError(t, err)
	wg.Go(func() { assert.NoError(t, gw.run(ctx)) })
	waitHTTP(t, gw.url+"/readyz", 20*time.Second)

	const n = 3
	peers := make([]*peerNode, n)
	recs := make([]*recorder, n)
	stops := make([]context.CancelFunc, n)
	for i := range n {
		p, err := newPeerNode(t.Context(), "127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: gw.url})
		require.NoError(t, err)
		recs[i] = &recorder{next: p.handler, gw: gw.url, channel: "tv", seen: make(chan struct{}, 1000)}
		p.handler = recs[i]
		peers[i] = p
		var pctx context.Context
		pctx, stops[i] = context.WithCancel(ctx)
		wg.Go(func() { assert.NoError(t, p.run(pctx)) })
	}

	results := make([]hlstest.PlayResult, n)
	var players sync.WaitGroup
	for i := range n {
		players.Go(func() { results[i] = hlstest.Play(ctx, t, peers[i].url+"/live/tv/index.m3u8", 22) })
	}
	// Kill the third proxy once its player has received eight segments (of about 14).
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for range 8 {
			select {
			case <-recs[2].seen:
			case <-ctx.Done():
				return
			}
		}
		stops[2]()
	}()
	players.Wait()
	select {
	case <-killed:
	default:
		t.Errorf("proxy 3's player got fewer than 8 segments; its ffmpeg said: %s", results[2].Stderr)
	}

	for i := range n - 1 {
		r := results[i]
		require.NoError(t, r.Err, "player %d: %s", i+1, r.Stderr)
		assert.Empty(t, r.Problems, "player %d", i+1)
		assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 20*time.Second, "player %d", i+1)
	}
	for i, p := range peers {
		st := p.proxy.Status().Channels["tv"]
		t.Logf("proxy %d: %d segments from peers, %d from gateway, %d bytes uploaded, offload %.2f",
			i+1, st.SegmentsFromPeers, st.SegmentsFromGateway, st.BytesUploaded, st.Offload)
		assert.Positive(t, st.SegmentsFromPeers, "proxy %d got no segment from a neighbour", i+1)
		assert.Zero(t, st.IntegrityFailures, "proxy %d", i+1)
		recs[i].mu.Lock()
		assert.Empty(t, recs[i].bad, "proxy %d served bytes that are not the gateway's", i+1)
		assert.Positive(t, recs[i].segments, "proxy %d", i+1)
		recs[i].mu.Unlock()
	}
	// The surviving proxies' counters reach the gateway with their next announce.
	deadline := time.Now().Add(5 * time.Second)
	var st swarm.ChannelReport
	for st = gatewayStats(t, gw.url, "tv"); st.BytesFromPeers == 0 && time.Now().Before(deadline); st = gatewayStats(t, gw.url, "tv") {
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("gateway stats: %s", fmt.Sprintf("%+v", st))
	assert.Positive(t, st.BytesFromPeers)
	assert.Positive(t, st.GatewayEgressBytes)
	assert.Greater(t, st.Offload, 0.0)
	cancel()
}

// TestDemo: `rawflow demo` starts, and an ffmpeg client reading its proxy URL receives media.
func TestDemo(t *testing.T) {
	t.Parallel()
	hlstest.RequireTool(t, "ffmpeg")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lineWriter{lines: make(chan string, 100)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--peers", "2", "--proxy-port", "0", "--viewers", "0"}, out, io.Discard)
	}()
	var proxyURL string
	for proxyURL == "" {
		select {
		case line := <-out.lines:
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "proxy" && f[1] == "1" {
				proxyURL = f[2]
			}
		case err := <-done:
			t.Fatalf("demo ended before printing a proxy URL: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("demo printed no proxy URL within 10 s")
		}
	}
	r := hlstest.Play(ctx, t, proxyURL, 4)
	require.NoError(t, r.Err, r.Stderr)
	assert.Empty(t, r.Problems)
	assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 3*time.Second)
	cancel()
	require.NoError(t, <-done)
}

// lineWriter sends each complete line written to it on lines.
type lineWriter struct {
	mu    sync.Mutex
	buf   string
	lines chan string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf += string(b)
	for {
		line, rest, ok := strings.Cut(w.buf, "\n")
		if !ok {
			return len(b), nil
		}
		w.buf = rest
		select {
		case w.lines <- line:
		default:
		}
	}
}
