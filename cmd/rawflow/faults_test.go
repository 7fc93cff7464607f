//go:build e2e

package main

// Fault tests: the gateway and the proxies as a deployment runs them (the rawflow binary,
// one process each, on a real redis-server), players simulated in this process, and the
// failures of a real deployment: a third of the viewers' proxies killed, Redis away for
// 30 s, the gateway killed and restarted. The Redis outage runs the same commands in this
// process instead, so that it can count goroutines.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/loadtest/simplayer"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// TestFaultKillThirdOfProxies: six proxies play; the two that uploaded most are SIGKILLed
// (they leave no word with the tracker, which lists them until their registration
// expires). The four others play on without a stall or a failed request and still get
// segments from their neighbours, and the gateway stays up.
func TestFaultKillThirdOfProxies(t *testing.T) {
	t.Parallel()
	fx := newFaultFixture(t)
	gw := fx.startGateway(faultAddrs(t, 1)[0], "kill-third")
	peers := fx.startPeers(gw.url, 6)
	viewers := fx.startViewers(peers)
	viewers.await(t, 3, 40*time.Second) // the start: three segments at once
	fx.eventually(20*time.Second, "the swarm forms", func() bool { return peers.fromPeers(t) > 0 })
	viewers.await(t, 3, 20*time.Second) // a few in steady state

	var survivors faultPeers
	var kept faultViewers
	for rank, i := range peers.byUploads(t) {
		if rank < 2 {
			viewers[i].stop()
			peers[i].kill()
			continue
		}
		survivors, kept = append(survivors, peers[i]), append(kept, viewers[i])
	}
	before := kept.results()
	fromPeers := survivors.fromPeers(t)
	kept.drain()
	kept.await(t, 5, 40*time.Second)
	fx.eventually(20*time.Second, "survivors get segments from peers after the kill", func() bool {
		return survivors.fromPeers(t) > fromPeers
	})

	for i, r := range kept.results() {
		t.Logf("survivor %d: %+v; proxy %+v", i+1, r, survivors[i].status(t))
		assert.Equal(t, before[i].Stalls, r.Stalls, "survivor %d stalled after the kill", i+1)
		assert.Equal(t, before[i].Errors, r.Errors, "survivor %d: failed requests after the kill", i+1)
		assert.False(t, survivors[i].exited(), "survivor %d's proxy is running", i+1)
	}
	t.Logf("survivors' segments from peers: %d at the kill, %d now", fromPeers, survivors.fromPeers(t))
	assert.False(t, gw.exited(), "the gateway is running")
	assert.Equal(t, http.StatusOK, fx.get(gw.url+"/readyz"), "the gateway is ready")
}

// TestFaultRedisOutage: Redis is away for 30 s while three viewers play. Nobody stalls or
// sees a failed request; the gateway stays ready and keeps serving; once Redis is back the
// swarm re-forms by itself, and no goroutines piled up in the gateway or a proxy (each
// process's own go_goroutines: the test's process runs other tests in parallel).
func TestFaultRedisOutage(t *testing.T) {
	t.Parallel()
	const outage = 30 * time.Second
	fx := newFaultFixture(t)
	gw := fx.startGateway(faultAddrs(t, 1)[0], "redis-outage")
	gwURL := gw.url
	peers := fx.startPeers(gwURL, 3)
	viewers := fx.startViewers(peers)
	viewers.await(t, 3, 40*time.Second)
	fx.eventually(20*time.Second, "the swarm forms", func() bool { return peers.fromPeers(t) > 0 })
	viewers.await(t, 2, 20*time.Second) // settle
	bases := []string{gwURL}
	for _, p := range peers {
		bases = append(bases, p.url)
	}
	before := settledGoroutines(t, bases)

	fx.redis.Stop()
	fromPeersAtStop := peers.fromPeers(t)
	viewers.drain()
	notReady := fx.watchReady(gwURL, outage)
	during := viewers.queued()
	fromPeersAtStart := peers.fromPeers(t)
	fx.redis.Start()
	restarted := time.Now()
	fx.eventually(20*time.Second, "the swarm re-forms after Redis is back", func() bool {
		return peers.fromPeers(t) >= fromPeersAtStart+3
	})
	reformed := time.Since(restarted)
	viewers.await(t, 3, 20*time.Second) // settle
	after := settledGoroutines(t, bases)

	t.Logf("segments from peers: %d at the stop, %d at the restart, %d now (re-formed after %s)",
		fromPeersAtStop, fromPeersAtStart, peers.fromPeers(t), reformed.Round(100*time.Millisecond))
	t.Logf("goroutines: %d before the outage, %d after recovery", before, after)
	for i, r := range viewers.results() {
		t.Logf("viewer %d: %d segments during the outage; %+v; proxy %+v", i+1, during[i], r, peers[i].status(t))
		assert.Zero(t, r.Stalls, "viewer %d stalled", i+1)
		assert.Zero(t, r.Errors, "viewer %d: failed requests", i+1)
		assert.GreaterOrEqual(t, during[i], 10, "viewer %d: segments kept coming during the outage", i+1)
	}
	assert.Zero(t, notReady, "/readyz answered other than 200 during the outage")
	for i, base := range bases {
		assert.LessOrEqual(t, after[i], before[i]+20, "%s: goroutines piled up", base)
	}
}

// TestFaultGatewayRestart: the gateway is SIGKILLed while three viewers play, and started
// again on the same port 3 s later: first with the same --peer-key (the proxies' tokens stay
// valid: same peer IDs), then with another one (the proxies must join afresh: new peer IDs).
// Each time the players ride out the gap on what they hold, and the swarm re-forms.
func TestFaultGatewayRestart(t *testing.T) {
	t.Parallel()
	fx := newFaultFixture(t)
	gw := fx.startGateway(faultAddrs(t, 1)[0], "restart-key-1")
	peers := fx.startPeers(gw.url, 3)
	viewers := fx.startViewers(peers)
	viewers.await(t, 3, 40*time.Second) // the start: three segments at once
	fx.eventually(20*time.Second, "the swarm forms", func() bool { return peers.fromPeers(t) > 0 })

	gw = fx.restartGateway(gw, "restart-key-1", peers, viewers)
	fx.restartGateway(gw, "restart-key-2", peers, viewers)
}

// restartGateway kills old once the viewers play steadily, starts a gateway on its address
// with peerKey 3 s later, and checks that the viewers did not stall, that the proxies served
// from their caches meanwhile and are back in the swarm: with the peer IDs they had when
// the key is the same, with new ones otherwise.
func (fx *faultFixture) restartGateway(old *faultGateway, peerKey string, peers faultPeers, viewers faultViewers) *faultGateway {
	t := fx.t
	t.Helper()
	viewers.await(t, 2, 20*time.Second) // steady state
	ids, seq, before := peers.ids(t), old.mediaSequence(t), viewers.results()
	old.kill()
	killed := time.Now()
	gapEnds := time.After(3 * time.Second)
	for i, p := range peers { // without their gateway, the proxies serve what they hold
		assert.Equal(t, http.StatusOK, fx.get(viewers[i].lastSegment()), "proxy %d, from its cache", i+1)
		assert.Equal(t, http.StatusOK, fx.get(p.url+"/api/v1/status"), "proxy %d", i+1)
	}
	<-gapEnds
	gw := fx.startGateway(old.addr, peerKey)
	gap := time.Since(killed)
	fromPeers := peers.fromPeers(t)
	fx.eventually(20*time.Second, "the proxies rejoin and get segments from peers again", func() bool {
		return peers.fromPeers(t) > fromPeers && !slices.Contains(peers.ids(t), "")
	})
	rejoined := time.Since(killed)
	viewers.await(t, 3, 20*time.Second)

	newIDs := peers.ids(t)
	t.Logf("--peer-key %s: gateway away %s, swarm back %s after the kill; peer IDs %v -> %v; "+
		"segments from peers %d -> %d; media sequence %d -> %d", peerKey, gap.Round(100*time.Millisecond),
		rejoined.Round(100*time.Millisecond), ids, newIDs, fromPeers, peers.fromPeers(t), seq, gw.mediaSequence(t))
	assert.Greater(t, gw.mediaSequence(t), seq, "the restored timeline keeps the media sequence rising")
	for i := range peers {
		if old.peerKey == peerKey {
			assert.Equal(t, ids[i], newIDs[i], "proxy %d: same key, same peer ID", i+1)
		} else {
			assert.NotEqual(t, ids[i], newIDs[i], "proxy %d: another key, a new peer ID", i+1)
		}
	}
	for i, r := range viewers.results() {
		t.Logf("viewer %d: buffer %s at the kill; %+v", i+1, before[i].Buffer.Round(100*time.Millisecond), r)
		assert.Equal(t, before[i].Stalls, r.Stalls, "viewer %d stalled across the restart", i+1)
	}
	return gw
}

// faultFixture owns what a fault test starts: Redis, processes, in-process commands and
// players; all of it ends when the test does.
type faultFixture struct {
	t     *testing.T
	bin   string
	redis *redistest.Server
	ctx   context.Context
	wg    sync.WaitGroup
}

func newFaultFixture(t *testing.T) *faultFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("fault tests: not in -short")
	}
	fx := &faultFixture{t: t, bin: buildRawflow(t), redis: redistest.StartServer(t)}
	ctx, cancel := context.WithCancel(t.Context())
	fx.ctx = ctx
	t.Cleanup(func() { cancel(); fx.wg.Wait() })
	return fx
}

// buildRawflow builds the rawflow command into the test's temporary directory (about a
// second with a warm build cache) and returns its path. A build per test rather than one
// per run: a binary shared by the run would outlive it, since no test knows it is the last.
func buildRawflow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rawflow")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// startGateway runs a gateway process on addr with the demo channel and waits until it is
// ready.
func (fx *faultFixture) startGateway(addr, peerKey string) *faultGateway {
	fx.t.Helper()
	p := fx.start("gateway", "gateway", "--listen", addr, "--channel", "demo=demo", "--redis", fx.redis.URL(),
		"--peer-key", peerKey, "--peer-addrs", "loopback", "--log-level", "info")
	gw := &faultGateway{faultProc: p, addr: addr, url: "http://" + addr, peerKey: peerKey}
	waitHTTP(fx.t, gw.url+"/readyz", 20*time.Second)
	return gw
}

// startPeers runs n proxy processes on the gateway and waits until each answers.
func (fx *faultFixture) startPeers(gwURL string, n int) faultPeers {
	fx.t.Helper()
	addrs := faultAddrs(fx.t, 2*n)
	peers := make(faultPeers, n)
	for i := range n {
		player, neighbour := addrs[2*i], addrs[2*i+1]
		p := fx.start(fmt.Sprintf("proxy %d", i+1), "peer", "--gateway", gwURL, "--listen", player,
			"--peer-listen", neighbour, "--log-level", "info")
		peers[i] = &faultPeer{faultProc: p, url: "http://" + player}
	}
	for _, p := range peers {
		waitHTTP(fx.t, p.url+"/api/v1/status", 10*time.Second)
	}
	return peers
}

// start starts the rawflow binary with args; it is killed when the test ends, and the tail
// of its output is printed if the test failed.
func (fx *faultFixture) start(name string, args ...string) *faultProc {
	fx.t.Helper()
	return fx.startProgram(name, fx.bin, nil, args...)
}

// startProgram is start for any program, with env added to the test's environment.
func (fx *faultFixture) startProgram(name, bin string, env []string, args ...string) *faultProc {
	fx.t.Helper()
	p := &faultProc{out: &procOutput{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(fx.ctx, bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(fx.t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	fx.t.Cleanup(func() {
		p.kill()
		if fx.t.Failed() {
			fx.t.Logf("%s (pid %d) output:\n%s", name, p.cmd.Process.Pid, p.out.tail(8<<10))
		}
	})
	return p
}

// startViewers starts one player per proxy.
func (fx *faultFixture) startViewers(peers faultPeers) faultViewers {
	vs := make(faultViewers, len(peers))
	for i, p := range peers {
		ctx, stop := context.WithCancel(fx.ctx)
		v := &faultViewer{segs: make(chan struct{}, 1000), stop: stop}
		v.p = simplayer.New(simplayer.Config{URL: p.url + "/live/demo/index.m3u8", OnSegment: v.onSegment})
		fx.wg.Go(func() { assert.NoError(fx.t, v.p.Run(ctx)) })
		vs[i] = v
	}
	return vs
}

// eventually polls cond (bounded) until it holds.
func (fx *faultFixture) eventually(within time.Duration, what string, cond func() bool) {
	fx.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			fx.t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// watchReady polls the gateway's /readyz for d and returns how many polls were not 200.
func (fx *faultFixture) watchReady(gwURL string, d time.Duration) int {
	end := time.After(d)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	bad := 0
	for {
		select {
		case <-end:
			return bad
		case <-tick.C:
			if code := fx.get(gwURL + "/readyz"); code != http.StatusOK {
				fx.t.Logf("/readyz: %d", code)
				bad++
			}
		}
	}
}

// get GETs url and returns the status, or 0 when the request failed.
func (fx *faultFixture) get(url string) int {
	resp, err := faultClient().Get(url)
	if err != nil {
		fx.t.Logf("GET %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// faultClient bounds every request the fault tests make themselves.
func faultClient() *http.Client { return &http.Client{Timeout: 3 * time.Second} }

// faultProc is one process of a test.
type faultProc struct {
	cmd  *exec.Cmd
	out  *procOutput
	done chan struct{} // closed once the process has exited
}

// kill SIGKILLs the process (a crash: no graceful shutdown) and waits until it has exited.
func (p *faultProc) kill() {
	_ = p.cmd.Process.Kill() // fails only when it has exited already
	<-p.done
}

func (p *faultProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// faultGateway is a gateway process.
type faultGateway struct {
	*faultProc
	addr    string // listen address
	url     string // base URL
	peerKey string
}

// mediaSequence returns the media sequence of the gateway's demo playlist.
func (gw *faultGateway) mediaSequence(t *testing.T) uint64 {
	t.Helper()
	resp, err := faultClient().Get(gw.url + "/live/demo/index.m3u8?" + swarm.PeerPlaylistQuery)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	w, err := playlist.ParseGateway(body)
	require.NoError(t, err, "%s", body)
	return w.MediaSequence
}

// faultPeer is a proxy: a process (nil when in process) and its player URL.
type faultPeer struct {
	*faultProc
	url string // player port base URL
}

// status returns the proxy's status for the demo channel.
func (p *faultPeer) status(t *testing.T) peerassist.ChannelStatus {
	t.Helper()
	resp, err := faultClient().Get(p.url + "/api/v1/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st peerassist.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st.Channels["demo"]
}

type faultPeers []*faultPeer

// fromPeers sums the segments the proxies got from neighbours.
func (ps faultPeers) fromPeers(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, p := range ps {
		n += p.status(t).SegmentsFromPeers
	}
	return n
}

// ids returns the proxies' peer IDs ("" for one not in the swarm).
func (ps faultPeers) ids(t *testing.T) []string {
	t.Helper()
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.status(t).PeerID
	}
	return ids
}

// byUploads returns the proxies' indices, the one that uploaded most to its neighbours
// first.
func (ps faultPeers) byUploads(t *testing.T) []int {
	t.Helper()
	uploaded := make([]int64, len(ps))
	order := make([]int, len(ps))
	for i, p := range ps {
		uploaded[i], order[i] = p.status(t).BytesUploaded, i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(uploaded[b], uploaded[a]) })
	t.Logf("bytes uploaded per proxy: %v", uploaded)
	return order
}

// faultViewer is a simulated player, with one signal per segment it downloads.
type faultViewer struct {
	p    *simplayer.Player
	segs chan struct{} // buffered; a full channel drops the signal
	stop context.CancelFunc

	mu   sync.Mutex // guards last
	last string     // URL of the last segment downloaded
}

func (v *faultViewer) onSegment(uri string, _ []byte) {
	v.mu.Lock()
	v.last = uri
	v.mu.Unlock()
	select {
	case v.segs <- struct{}{}:
	default:
	}
}

func (v *faultViewer) lastSegment() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last
}

type faultViewers []*faultViewer

// await waits until every viewer has downloaded n more segments (signals not yet taken),
// all within one deadline.
func (vs faultViewers) await(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for i, v := range vs {
		for got := range n {
			select {
			case <-v.segs:
			case <-deadline.C:
				t.Fatalf("viewer %d: %d of %d segments within %s; %+v", i+1, got, n, within, v.p.Result())
			}
		}
	}
}

// drain forgets the segment signals received so far: counting starts afresh.
func (vs faultViewers) drain() {
	for _, v := range vs {
		for len(v.segs) > 0 {
			<-v.segs
		}
	}
}

// queued returns, per viewer, the segment signals received and not yet taken.
func (vs faultViewers) queued() []int {
	n := make([]int, len(vs))
	for i, v := range vs {
		n[i] = len(v.segs)
	}
	return n
}

func (vs faultViewers) results() []simplayer.Result {
	rs := make([]simplayer.Result, len(vs))
	for i, v := range vs {
		rs[i] = v.p.Result()
	}
	return rs
}

// settledGoroutines returns, for each process serving /metrics at bases, the fewest
// goroutines seen over a second: the steady count, without the short-lived ones of
// requests under way.
func settledGoroutines(t *testing.T, bases []string) []int {
	t.Helper()
	least := make([]int, len(bases))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := range 10 {
		<-tick.C
		for i, base := range bases {
			g := int(metricValue(t, base, "go_goroutines"))
			if n == 0 || g < least[i] {
				least[i] = g
			}
		}
	}
	return least
}

// faultAddrs returns n distinct 127.0.0.1 addresses that were free a moment ago.
func faultAddrs(t *testing.T, n int) []string {
	t.Helper()
	// An address of 127/8 of this test's own: while a gateway is down between a kill and a
	// restart, no other test (they listen on 127.0.0.1) can take its port.
	host := fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(254))
	addrs := make([]string, n)
	for i := range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		require.NoError(t, err)
		defer ln.Close() // held until all are picked, so none is picked twice
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// procOutput is a process's output, written by its copier while the test may read it.
type procOutput struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (o *procOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// tail returns the last n bytes written.
func (o *procOutput) tail(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf.Bytes()
	return string(b[max(0, len(b)-n):])
}
