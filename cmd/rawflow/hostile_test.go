//go:build e2e

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/loadtest/simplayer"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// Hostile neighbours. A hostile peer joins the swarm through the tracker like a proxy, before
// the honest ones (so it holds slot 0 of the cell: the root of stripe 0, and the parent of
// every other member there), and serves its neighbour port with one bad behaviour. The honest proxies must never pass a bad byte to their players, nor let them
// stall; they must notice the hostile peer; and when it sends bytes that do not match the
// gateway's digest, they must report it until the gateway bans it.

const (
	hostileChannel = "demo"
	// hostileProxies is the number of honest proxies, each with its player.
	hostileProxies = 3
	// hostilePlay is the segments every player must get (2 s each; it starts 3 behind live).
	hostilePlay = 9
	// banWait bounds the wait for a ban once the players got hostilePlay segments.
	banWait = 40 * time.Second
)

// hostileBehaviour is one way of serving the neighbour port badly.
type hostileBehaviour struct {
	name string
	// answer answers one segment request, already read from c; nil never answers.
	answer func(ctx context.Context, h *hostilePeer, c net.Conn, seg hostileSeg)
	// verdict is what the gateway must end up doing with the peer.
	verdict hostileVerdict
	// noticed says, from the honest proxies' summed counters and the connections the peer
	// got, that the proxies noticed it misbehave.
	noticed func(c peerassist.ChannelStatus, conns int64) bool
}

// hostileVerdict is what a behaviour earns a peer.
type hostileVerdict int

const (
	// banned: the proxies catch bytes that do not match the digest or a redirect, or see the
	// peer fail reportAfterFailures times in a row; they report it, and the gateway bans it.
	banned hostileVerdict = iota
	// undecided: the wrong bytes are caught only when the gateway completes the partial
	// transfer; when an honest neighbour delivers the segment first they go unseen. Either
	// outcome is right.
	undecided
)

func integrityFailed(c peerassist.ChannelStatus, _ int64) bool { return c.IntegrityFailures > 0 }
func transferFailed(c peerassist.ChannelStatus, _ int64) bool  { return c.NeighbourFailures > 0 }
func anyFailed(c peerassist.ChannelStatus, _ int64) bool {
	return c.IntegrityFailures+c.NeighbourFailures > 0
}

// failedOrCompleted: a transfer stalled, or its part was completed from the gateway.
func failedOrCompleted(c peerassist.ChannelStatus, _ int64) bool {
	return c.NeighbourFailures+c.RangeCompletions > 0
}

// mostFailed: most requests to the peer counted as failures (a few may be under way at the
// end), so that it is skipped rather than asked again for every segment.
func mostFailed(c peerassist.ChannelStatus, conns int64) bool { return 2*c.NeighbourFailures >= conns }

func hostileBehaviours() []hostileBehaviour {
	return []hostileBehaviour{
		{name: "wrong-bytes", verdict: banned, noticed: integrityFailed,
			answer: func(_ context.Context, _ *hostilePeer, c net.Conn, seg hostileSeg) {
				respond(c, len(seg.data), junk(len(seg.data)))
			}},
		// The right prefix, then the connection closes: a crash, as far as anyone can tell.
		{name: "truncated", verdict: banned, noticed: transferFailed,
			answer: func(_ context.Context, _ *hostilePeer, c net.Conn, seg hostileSeg) {
				respond(c, len(seg.data), seg.data[:len(seg.data)/2])
			}},
		// A wrong prefix, then the connection closes.
		{name: "truncated-garbage", verdict: undecided, noticed: anyFailed,
			answer: func(_ context.Context, _ *hostilePeer, c net.Conn, seg hostileSeg) {
				respond(c, len(seg.data), junk(len(seg.data)/2))
			}},
		// The right bytes, one a second: about as slow as the 1 s stall limit.
		{name: "one-byte-per-second", verdict: banned, noticed: failedOrCompleted,
			answer: func(ctx context.Context, _ *hostilePeer, c net.Conn, seg hostileSeg) {
				trickle(ctx, c, seg.data)
			}},
		// The right bytes, then junk without end (no Content-Length).
		{name: "endless", verdict: banned, noticed: integrityFailed,
			answer: func(ctx context.Context, _ *hostilePeer, c net.Conn, seg hostileSeg) {
				endless(ctx, c, seg.data)
			}},
		// The right bytes and 4 KiB more, as declared.
		{name: "length-larger", verdict: banned, noticed: integrityFailed,
			answer: func(_ context.Context, _ *hostilePeer, c net.Conn, seg hostileSeg) {
				respond(c, len(seg.data)+4096, append(seg.data[:len(seg.data):len(seg.data)], junk(4096)...))
			}},
		// Half the size declared, then the whole segment: the first half is the body.
		{name: "length-smaller", verdict: banned, noticed: integrityFailed,
			answer: func(_ context.Context, _ *hostilePeer, c net.Conn, seg hostileSeg) {
				respond(c, len(seg.data)/2, seg.data)
			}},
		{name: "redirect-gateway", verdict: banned, noticed: integrityFailed,
			answer: func(_ context.Context, h *hostilePeer, c net.Conn, seg hostileSeg) {
				redirect(c, h.gw+"/live/"+hostileChannel+"/"+seg.name+"?"+redirectMark)
			}},
		// To a server on another port that the tracker never lists (it serves the right bytes).
		{name: "redirect-elsewhere", verdict: banned, noticed: integrityFailed,
			answer: func(_ context.Context, h *hostilePeer, c net.Conn, seg hostileSeg) {
				redirect(c, h.elsewhere.URL+swarm.NeighbourSegmentPath+seg.digest)
			}},
		// Random bytes instead of an HTTP response, then the connection closes.
		{name: "garbage", verdict: banned, noticed: transferFailed,
			answer: func(_ context.Context, _ *hostilePeer, c net.Conn, _ hostileSeg) {
				_, _ = c.Write(junk(4096))
			}},
		// The connection is accepted and the request read; no answer ever comes.
		{name: "silent", verdict: banned, noticed: mostFailed},
	}
}

// redirectMark marks the gateway requests that followed a hostile peer's redirect.
const redirectMark = "via=hostile"

// TestHostileNeighbour runs, for each hostile behaviour, a gateway on the built-in source,
// three honest proxies played by simulated players, and the hostile peer.
func TestHostileNeighbour(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	for _, b := range hostileBehaviours() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testHostile(t, b)
		})
	}
}

// testHostile plays one behaviour until every player got hostilePlay segments (about 12 s),
// logs its summary line and checks the outcome. A ban may take longer: a peer that fails
// without lying is reported by a proxy after reportAfterFailures failures in a row, banned
// once two proxies reported it, and it is the parent in one stripe of swarm.Stripes (one
// segment in four, with a pause after each failure): up to about 30 s; banWait allows 40.
func testHostile(t *testing.T, b hostileBehaviour) {
	r := startHostile(t, b)
	require.True(t, r.watch.waitAll(t.Context(), hostilePlay, 60*time.Second),
		"players stopped getting segments: %v", r.watch.counts())
	isBanned := func() bool { return r.h.refused() != nil && !r.listed(t.Context()) }
	wasBanned := b.verdict == banned && waitFor(t.Context(), banWait, isBanned) ||
		b.verdict == undecided && isBanned()
	sum, res := r.outcome()
	t.Log(hostileSummary(b, r, sum, wasBanned, res))

	r.assertPlayersServed(t, res)
	h := r.h
	assert.Positive(t, h.conns.Load(), "no proxy ever asked the hostile peer")
	if strings.HasPrefix(b.name, "redirect") {
		assert.Zero(t, r.followed.Load()+h.elsewhereHits.Load(),
			"proxies followed a neighbour's redirect to an address the tracker never handed out")
	}
	assert.True(t, b.noticed(sum, h.conns.Load()), "the proxies asked the hostile peer %d times and noticed too little: %+v",
		h.conns.Load(), sum)
	if b.verdict == banned {
		assert.True(t, wasBanned, "the gateway did not ban the hostile peer (last join: %v)", h.refused())
	}
	if b.verdict == banned || wasBanned {
		r.assertBanned(t)
	}
}

// hostileRun is one behaviour's stack: the gateway on the built-in source and its registry,
// the hostile peer, and the honest proxies with their players. Everything stops when the
// test ends.
type hostileRun struct {
	gw       *gatewayNode
	reg      *swarm.Memory
	followed atomic.Int64 // gateway requests that followed a hostile redirect
	h        *hostilePeer
	peers    []*peerNode
	recs     []*recorder
	players  []*simplayer.Player
	watch    *segmentWatch
}

// startHostile starts the stack and the hostile peer, waits until the tracker lists the
// peer in its cell, then starts the honest proxies and their players.
func startHostile(t *testing.T, b hostileBehaviour) *hostileRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); waitStopped(t, &wg, 15*time.Second) })
	quiet := slog.New(slog.DiscardHandler) // counters tell the story; per-event warnings are noise here

	origin, err := newDemoOrigin()
	require.NoError(t, err)
	wg.Go(func() { _ = origin.run(ctx) })
	r := &hostileRun{reg: swarm.NewMemory(swarm.Options{})}
	r.gw, err = newGatewayNode("127.0.0.1:0", gateway.Config{PeerAddrs: swarm.AddrLoopback, Logger: quiet, ReportInterval: time.Second,
		PollInterval: 500 * time.Millisecond,
		Channels:     []gateway.ChannelConfig{{Name: hostileChannel, Sources: []string{origin.url}}}},
		r.reg)
	require.NoError(t, err)
	r.gw.wrap = countMarked(&r.followed)
	wg.Go(func() { assert.NoError(t, r.gw.run(ctx)) })
	waitHTTP(t, r.gw.url+"/readyz", 20*time.Second)

	r.h = newHostilePeer(t, r.gw.url, b.answer)
	wg.Go(func() { r.h.run(ctx) })
	require.True(t, waitFor(ctx, 20*time.Second, func() bool { return r.listed(ctx) }),
		"the hostile peer never joined")

	r.watch = newSegmentWatch(r.gw.url, hostileProxies)
	for i := range hostileProxies {
		// Each honest proxy on a host of its own (127/8 is loopback): reporters on one
		// address count as one (tracker bans).
		p, err := newPeerNode(t.Context(), "127.0.0.1:0", fmt.Sprintf("127.0.0.%d:0", 2+i), peerassist.Config{GatewayURL: r.gw.url, Logger: quiet})
		require.NoError(t, err)
		rec := &recorder{next: p.handler, gw: r.gw.url, channel: hostileChannel, seen: make(chan struct{}, 1000)}
		p.handler = rec
		wg.Go(func() { assert.NoError(t, p.run(ctx)) })
		pl := simplayer.New(simplayer.Config{URL: p.url + "/live/" + hostileChannel + "/index.m3u8",
			OnSegment: func(uri string, data []byte) { r.watch.check(i, uri, data) }})
		wg.Go(func() { _ = pl.Run(ctx) })
		r.peers, r.recs, r.players = append(r.peers, p), append(r.recs, rec), append(r.players, pl)
	}
	return r
}

// outcome returns the honest proxies' summed counters and the players' results.
func (r *hostileRun) outcome() (peerassist.ChannelStatus, []simplayer.Result) {
	var sum peerassist.ChannelStatus
	for _, p := range r.peers {
		c := p.proxy.Status().Channels[hostileChannel]
		sum.Add(c.Counters)
		sum.RangeCompletions += c.RangeCompletions
	}
	var res []simplayer.Result
	for _, p := range r.players {
		res = append(res, p.Result())
	}
	return sum, res
}

// assertPlayersServed checks that no bad byte reached a player (as the player got it, and
// as its proxy served it) and that every player kept playing.
func (r *hostileRun) assertPlayersServed(t *testing.T, res []simplayer.Result) {
	t.Helper()
	r.watch.assertClean(t)
	for i, rec := range r.recs {
		rec.mu.Lock()
		assert.Empty(t, rec.bad, "proxy %d served its player bytes that are not the gateway's", i+1)
		rec.mu.Unlock()
	}
	for i, pr := range res {
		assert.Zero(t, pr.Stalls, "player %d stalled", i+1)
		assert.Zero(t, pr.Errors, "player %d had failed requests", i+1)
		assert.GreaterOrEqual(t, pr.Segments, hostilePlay, "player %d", i+1)
	}
}

// listed reports whether the registry lists the hostile peer in its cell.
func (r *hostileRun) listed(ctx context.Context) bool {
	id := r.h.peerID()
	ms, err := r.reg.Roster(ctx, hostileChannel, "", "")
	if err != nil || id == "" {
		return false
	}
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

// assertBanned checks what the gateway does with a banned peer: it is out of the swarm;
// its stream, resumed with its still valid token, is refused with 403 (its address is
// banned), and so is a fresh join from its address under a new ID.
func (r *hostileRun) assertBanned(t *testing.T) {
	t.Helper()
	h := r.h
	assert.ErrorIs(t, h.refused(), swarm.ErrForbidden, "the banned peer joining again")
	assert.NotErrorIs(t, h.refused(), swarm.ErrUnauthorized)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := h.tracker.Events(ctx, h.subscription(), "", "", func(swarm.Event) error { return errJoinedHere })
	assert.ErrorIs(t, err, swarm.ErrForbidden, "a fresh join from the banned address")
	assert.False(t, r.listed(ctx), "the registry still lists the banned peer")
}

// errJoinedHere ends a probe's stream once the gateway admitted it.
var errJoinedHere = errors.New("joined")

// hostileSummary is the one-line result of a behaviour, for the results table.
func hostileSummary(b hostileBehaviour, r *hostileRun, c peerassist.ChannelStatus, wasBanned bool, res []simplayer.Result) string {
	h := r.h
	var segs, stalls, errs []int
	for _, pr := range res {
		segs, stalls, errs = append(segs, pr.Segments), append(stalls, pr.Stalls), append(errs, pr.Errors)
	}
	join := "accepted"
	if err := h.refused(); err != nil {
		join = "refused " + statusOf(err)
	}
	return fmt.Sprintf("%-19s | hostile: conns=%d reqs=%d redirects-followed=%d banned=%v join=%s"+
		" | proxies: integrity=%d neighbour-fail=%d range-compl=%d seg-from-peers=%d seg-from-gw=%d"+
		" | players: segs=%v stalls=%v errors=%v bad-bytes=%d",
		b.name, h.conns.Load(), h.requests.Load(), r.followed.Load()+h.elsewhereHits.Load(), wasBanned, join,
		c.IntegrityFailures, c.NeighbourFailures, c.RangeCompletions, c.SegmentsFromPeers, c.SegmentsFromGateway,
		segs, stalls, errs, r.watch.badCount())
}

// statusOf picks the HTTP status out of a join's error.
func statusOf(err error) string {
	if errors.Is(err, swarm.ErrUnauthorized) {
		return "401"
	}
	if errors.Is(err, swarm.ErrForbidden) {
		return "403"
	}
	if _, rest, ok := strings.Cut(err.Error(), swarm.PathEvents+": "); ok && len(rest) >= 3 {
		return rest[:3]
	}
	return err.Error()
}

// countMarked wraps a gateway handler to count the requests carrying redirectMark.
func countMarked(n *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.RawQuery == redirectMark {
				n.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// waitStopped waits, bounded, for everything a test started to stop.
func waitStopped(t *testing.T, wg *sync.WaitGroup, within time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		t.Errorf("the stack was still running %s after it was told to stop", within)
	}
}

// waitFor polls cond every 100 ms until it holds (true) or within passes (false).
func waitFor(ctx context.Context, within time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// segmentWatch checks every segment a player got against the gateway's digest for its
// name, and counts each player's segments.
type segmentWatch struct {
	gw   string        // the gateway's base URL
	step chan struct{} // one send per segment (buffered, never blocks)

	mu  sync.Mutex // guards the following fields
	n   []int
	bad []string
}

func newSegmentWatch(gw string, players int) *segmentWatch {
	return &segmentWatch{gw: gw, step: make(chan struct{}, 1000), n: make([]int, players)}
}

// check runs in player i's OnSegment.
func (w *segmentWatch) check(i int, uri string, data []byte) {
	u, err := url.Parse(uri)
	var etag string
	var size int64
	known := false
	if err == nil {
		etag, size, known = gatewayObject(w.gw, u.Path)
	}
	w.mu.Lock()
	switch {
	case !known:
		w.bad = append(w.bad, fmt.Sprintf("player %d: %s: unknown to the gateway", i+1, uri))
	case int64(len(data)) != size || ingest.ETag(playlist.Sum(data)) != etag:
		w.bad = append(w.bad, fmt.Sprintf("player %d: %s: %d bytes that are not the gateway's", i+1, uri, len(data)))
	}
	w.n[i]++
	w.mu.Unlock()
	select {
	case w.step <- struct{}{}:
	default:
	}
}

// waitAll waits until every player got at least n segments, at most within.
func (w *segmentWatch) waitAll(ctx context.Context, n int, within time.Duration) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for least(w.counts()) < n {
		select {
		case <-w.step:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func least(ns []int) int {
	m := ns[0]
	for _, n := range ns[1:] {
		m = min(m, n)
	}
	return m
}

func (w *segmentWatch) counts() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.n...)
}

func (w *segmentWatch) badCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bad)
}

func (w *segmentWatch) assertClean(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.Empty(t, w.bad, "a player got bytes that are not the gateway's")
}

// hostilePeer joins the swarm with an event stream, learns every listed segment, and serves
// its neighbour port with a bad behaviour.
type hostilePeer struct {
	gw      string // the gateway's base URL
	tracker *swarm.Client
	http    *http.Client
	ln      net.Listener
	addr    string // advertised: the listener's 127.0.0.1:port
	// answer answers a segment request the peer's way; nil never answers.
	answer func(ctx context.Context, h *hostilePeer, c net.Conn, seg hostileSeg)
	// elsewhere is a server the tracker never lists, serving the right bytes.
	elsewhere *httptest.Server

	conns         atomic.Int64 // connections accepted on the neighbour port
	requests      atomic.Int64 // segment requests read from them
	elsewhereHits atomic.Int64 // requests elsewhere received

	mu        sync.Mutex        // guards the following fields
	names     map[string]string // digest (hex) -> segment name, as listed
	data      map[string][]byte // digest -> the gateway's bytes, fetched on first request
	id, token string
	refusal   error // why the last stream open after the first join was refused; nil once one is accepted
}

// hostileSeg is a requested segment: its digest, name and the gateway's bytes.
type hostileSeg struct {
	digest, name string
	data         []byte
}

func newHostilePeer(t *testing.T, gw string, answer func(context.Context, *hostilePeer, net.Conn, hostileSeg)) *hostilePeer {
	t.Helper()
	base, err := url.Parse(gw)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := &hostilePeer{gw: gw, tracker: swarm.NewClient(base, &http.Client{}, 2*time.Second), http: &http.Client{Timeout: 5 * time.Second},
		ln: ln, addr: ln.Addr().String(), answer: answer, names: map[string]string{}, data: map[string][]byte{}}
	h.elsewhere = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.elsewhereHits.Add(1)
		seg, ok := h.segment(r.Context(), strings.TrimPrefix(r.URL.Path, swarm.NeighbourSegmentPath))
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(seg.data)
	}))
	t.Cleanup(h.elsewhere.Close)
	return h
}

// run keeps the peer's event stream open (opening it again a second after it ends) and
// polls the playlist every 100 ms, serving the neighbour port meanwhile, until ctx ends.
func (h *hostilePeer) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { h.accept(ctx) })
	h.stream(ctx)
}

func (h *hostilePeer) subscription() swarm.Subscription {
	return swarm.Subscription{Channel: hostileChannel, Renditions: []string{""}, Addr: h.addr}
}

// stream keeps the peer's event stream open, as the peer it first joined as.
func (h *hostilePeer) stream(ctx context.Context) {
	for ctx.Err() == nil {
		h.mu.Lock()
		id, token := h.id, h.token
		h.mu.Unlock()
		err := h.tracker.Events(ctx, h.subscription(), id, token, func(ev swarm.Event) error {
			h.event(ev)
			return nil
		})
		h.mu.Lock()
		if id != "" && ctx.Err() == nil && err != nil && !strings.Contains(err.Error(), "EOF") {
			h.refusal = err
		}
		h.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (h *hostilePeer) accept(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = h.ln.Close() })
	defer stop()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.conns.Add(1)
		wg.Go(func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { _ = c.Close() })
			defer stop()
			h.serve(ctx, c)
		})
	}
}

// event takes the peer's ID from the hello, and the names of new segments from the
// segment events, as an honest proxy does.
func (h *hostilePeer) event(ev swarm.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.Name {
	case swarm.EventHello:
		var hello swarm.Hello
		if json.Unmarshal(ev.Data, &hello) == nil {
			h.id, h.token, h.refusal = hello.PeerID, hello.Token, nil
		}
	case swarm.EventSegment:
		var se swarm.SegmentEvent
		if json.Unmarshal(ev.Data, &se) == nil && len(h.names) < 10000 {
			h.names[se.Digest] = se.Name
		}
	}
}

func (h *hostilePeer) get(ctx context.Context, p string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.gw+p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", p, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 32<<20))
}

// peerID returns the ID the gateway gave the peer.
func (h *hostilePeer) peerID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.id
}

// refused returns why the gateway refused the last stream open, if it did.
func (h *hostilePeer) refused() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refusal
}

// segment returns a listed segment with the gateway's bytes; false for a digest never
// listed.
func (h *hostilePeer) segment(ctx context.Context, digest string) (hostileSeg, bool) {
	h.mu.Lock()
	name, data := h.names[digest], h.data[digest]
	h.mu.Unlock()
	if name == "" {
		return hostileSeg{}, false
	}
	if data == nil {
		var err error
		if data, err = h.get(ctx, "/live/"+hostileChannel+"/"+name); err != nil || playlist.Sum(data).String() != digest {
			return hostileSeg{}, false
		}
		h.mu.Lock()
		h.data[digest] = data
		h.mu.Unlock()
	}
	return hostileSeg{digest: digest, name: name, data: data}, true
}

// serve reads one segment request from c and answers it the peer's way.
func (h *hostilePeer) serve(ctx context.Context, c net.Conn) {
	seg, ok := h.request(ctx, c)
	switch {
	case !ok:
	case h.answer == nil:
		_, _ = io.Copy(io.Discard, c) // until the client gives up or the test ends
	default:
		h.answer(ctx, h, c, seg)
	}
}

// request reads one segment request from c and returns the segment; for a digest never
// listed it answers 404 itself and returns false.
func (h *hostilePeer) request(ctx context.Context, c net.Conn) (hostileSeg, bool) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return hostileSeg{}, false
	}
	_ = c.SetReadDeadline(time.Time{})
	h.requests.Add(1)
	seg, ok := h.segment(ctx, strings.TrimPrefix(req.URL.Path, swarm.NeighbourSegmentPath))
	if !ok {
		_, _ = io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	}
	return seg, ok
}

// respond writes a 200 response that declares length bytes and carries body.
func respond(c net.Conn, length int, body []byte) {
	_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", length)
	_, _ = c.Write(body)
}

// trickle writes a 200 response of data, one byte a second.
func trickle(ctx context.Context, c net.Conn, data []byte) {
	respond(c, len(data), nil)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for _, b := range data {
		if _, err := c.Write([]byte{b}); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// endless writes a 200 response without a length: data, then junk until the client goes.
func endless(ctx context.Context, c net.Conn, data []byte) {
	_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
	for chunk := data; ctx.Err() == nil; chunk = junk(32 << 10) {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

func redirect(c net.Conn, to string) {
	_, _ = fmt.Fprintf(c, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", to)
}

func junk(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
