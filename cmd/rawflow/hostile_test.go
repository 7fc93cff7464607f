//go:build e2e

package main

import (
	"bufio"
	"context"
	"crypto/rand"
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

// Hostile neighbours. A hostile peer joins the swarm through the tracker like a proxy,
// claims every segment the gateway lists as soon as it is listed (so it is a holder of
// everything, often the only early one), and serves its neighbour port with one bad
// behaviour. The honest proxies must never pass a bad byte to their players, nor let them
// stall; they must notice the hostile peer; and when it sends bytes that do not match the
// gateway's digest, they must report it until the gateway bans it.

const (
	hostileChannel = "demo"
	// hostileProxies is the number of honest proxies, each with its player.
	hostileProxies = 3
	// hostilePlay is the segments every player must get (2 s each; it starts 3 behind live).
	hostilePlay = 9
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
// logs its summary line and checks the outcome.
func testHostile(t *testing.T, b hostileBehaviour) {
	r := startHostile(t, b)
	require.True(t, r.watch.waitAll(t.Context(), hostilePlay, 60*time.Second),
		"players stopped getting segments: %v", r.watch.counts())
	isBanned := func() bool { return r.h.refused() != nil && !r.obs.lists(t.Context(), r.h) }
	wasBanned := b.verdict == banned && waitFor(t.Context(), 20*time.Second, isBanned) ||
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
		assert.True(t, wasBanned, "the gateway did not ban the hostile peer (last heartbeat: %v)", h.refused())
	}
	if b.verdict == banned || wasBanned {
		assertBanned(t, h, r.obs)
	}
}

// hostileRun is one behaviour's stack: the gateway on the built-in source, the hostile
// peer, an observer, and the honest proxies with their players. Everything stops when the
// test ends.
type hostileRun struct {
	gw       *gatewayNode
	followed atomic.Int64 // gateway requests that followed a hostile redirect
	h        *hostilePeer
	obs      *observer
	peers    []*peerNode
	recs     []*recorder
	players  []*simplayer.Player
	watch    *segmentWatch
}

// startHostile starts the stack and the hostile peer, waits until the tracker lists the
// peer as a holder, then starts the honest proxies and their players.
func startHostile(t *testing.T, b hostileBehaviour) *hostileRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); waitStopped(t, &wg, 15*time.Second) })
	quiet := slog.New(slog.DiscardHandler) // counters tell the story; per-event warnings are noise here

	origin, err := newDemoOrigin()
	require.NoError(t, err)
	wg.Go(func() { _ = origin.run(ctx) })
	r := &hostileRun{}
	r.gw, err = newGatewayNode("127.0.0.1:0", gateway.Config{Logger: quiet, AnnounceInterval: time.Second,
		PollInterval: 500 * time.Millisecond,
		Channels:     []gateway.ChannelConfig{{Name: hostileChannel, Sources: []string{origin.url}}}},
		swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	r.gw.wrap = countMarked(&r.followed)
	wg.Go(func() { assert.NoError(t, r.gw.run(ctx)) })
	waitHTTP(t, r.gw.url+"/readyz", 20*time.Second)

	r.h = newHostilePeer(t, r.gw.url, b.answer)
	wg.Go(func() { r.h.run(ctx) })
	r.obs = newObserver(t, r.gw.url)
	require.True(t, waitFor(ctx, 20*time.Second, func() bool { return r.obs.lists(ctx, r.h) }),
		"the hostile peer never became a holder")

	r.watch = newSegmentWatch(r.gw.url, hostileProxies)
	for i := range hostileProxies {
		p, err := newPeerNode("127.0.0.1:0", "127.0.0.1:0", peerassist.Config{GatewayURL: r.gw.url, Logger: quiet})
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
		sum.Counters.Add(c.Counters)
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

// assertBanned checks what the gateway does with a banned peer: its heartbeat is refused
// with 403 (its token is still valid, its address is banned), and so is a fresh announce
// from its address under a new ID.
func assertBanned(t *testing.T, h *hostilePeer, obs *observer) {
	t.Helper()
	ctx := t.Context()
	assert.ErrorIs(t, h.refused(), swarm.ErrForbidden, "heartbeat of the banned peer")
	assert.NotErrorIs(t, h.refused(), swarm.ErrUnauthorized)
	_, err := h.tracker.Announce(ctx, swarm.AnnounceRequest{Channel: hostileChannel, Addr: h.addr})
	assert.ErrorIs(t, err, swarm.ErrForbidden, "fresh announce from the banned address")
	assert.False(t, obs.lists(ctx, h), "a lookup still lists the banned peer")
}

// hostileSummary is the one-line result of a behaviour, for the results table.
func hostileSummary(b hostileBehaviour, r *hostileRun, c peerassist.ChannelStatus, wasBanned bool, res []simplayer.Result) string {
	h := r.h
	var segs, stalls, errs []int
	for _, pr := range res {
		segs, stalls, errs = append(segs, pr.Segments), append(stalls, pr.Stalls), append(errs, pr.Errors)
	}
	heartbeat := "accepted"
	if err := h.refused(); err != nil {
		heartbeat = "refused " + statusOf(err)
	}
	return fmt.Sprintf("%-19s | hostile: conns=%d reqs=%d redirects-followed=%d banned=%v heartbeat=%s"+
		" | proxies: integrity=%d neighbour-fail=%d range-compl=%d seg-from-peers=%d seg-from-gw=%d"+
		" | players: segs=%v stalls=%v errors=%v bad-bytes=%d",
		b.name, h.conns.Load(), h.requests.Load(), r.followed.Load()+h.elsewhereHits.Load(), wasBanned, heartbeat,
		c.IntegrityFailures, c.NeighbourFailures, c.RangeCompletions, c.SegmentsFromPeers, c.SegmentsFromGateway,
		segs, stalls, errs, r.watch.badCount())
}

// statusOf picks the HTTP status out of an announce error.
func statusOf(err error) string {
	if errors.Is(err, swarm.ErrUnauthorized) {
		return "401"
	}
	if errors.Is(err, swarm.ErrForbidden) {
		return "403"
	}
	if _, rest, ok := strings.Cut(err.Error(), swarm.PathAnnounce+": "); ok && len(rest) >= 3 {
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

// observer is an honest-looking tracker client (a leech, so never a holder itself) that
// asks who holds the segments.
type observer struct {
	tracker   *swarm.Client
	id, token string
}

func newObserver(t *testing.T, gw string) *observer {
	t.Helper()
	base, err := url.Parse(gw)
	require.NoError(t, err)
	o := &observer{tracker: swarm.NewClient(base, 2*time.Second)}
	resp, err := o.tracker.Announce(t.Context(), swarm.AnnounceRequest{Channel: hostileChannel, Leech: true})
	require.NoError(t, err)
	o.id, o.token = resp.PeerID, resp.Token
	return o
}

// lists reports whether a lookup of the newest segment the hostile peer claimed lists it.
func (o *observer) lists(ctx context.Context, h *hostilePeer) bool {
	digest, id := h.newest()
	if digest == "" || id == "" {
		return false
	}
	resp, err := o.tracker.Lookup(ctx, swarm.LookupRequest{PeerID: o.id, Token: o.token, Channel: hostileChannel,
		Digest: digest, Leech: true})
	if err != nil {
		return false
	}
	for _, hd := range resp.Holders {
		if hd.ID == id {
			return true
		}
	}
	return false
}

// hostilePeer registers with the tracker, claims every listed segment, and serves its
// neighbour port with a bad behaviour.
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
	last      string            // the newest listed digest
	id, token string
	refusal   error // the last heartbeat refused after the join; nil once one is accepted
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
	h := &hostilePeer{gw: gw, tracker: swarm.NewClient(base, 2*time.Second), http: &http.Client{Timeout: 5 * time.Second},
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

// run heartbeats every second and polls the playlist every 100 ms (faster than any proxy,
// so it claims each new segment before they look it up), serving the neighbour port
// meanwhile, until ctx ends.
func (h *hostilePeer) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { h.accept(ctx) })
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		second := i%10 == 0
		if second {
			h.announce(ctx)
		}
		h.claim(ctx, second)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
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

func (h *hostilePeer) announce(ctx context.Context) {
	h.mu.Lock()
	req := swarm.AnnounceRequest{PeerID: h.id, Token: h.token, Channel: hostileChannel, Addr: h.addr}
	h.mu.Unlock()
	resp, err := h.tracker.Announce(ctx, req)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.id, h.token, h.refusal = resp.PeerID, resp.Token, nil
	case req.PeerID != "" && ctx.Err() == nil:
		h.refusal = err
	}
}

// claim says the peer holds every segment the gateway lists now, when the list has a new
// segment or again is set.
func (h *hostilePeer) claim(ctx context.Context, again bool) {
	w, err := h.window(ctx)
	if err != nil || len(w.Segments) == 0 {
		return
	}
	var digests []string
	h.mu.Lock()
	for _, s := range w.Segments {
		d := s.Digest.String()
		h.names[d] = s.Name
		digests = append(digests, d)
	}
	fresh := h.last != digests[len(digests)-1]
	h.last = digests[len(digests)-1]
	id, token := h.id, h.token
	h.mu.Unlock()
	if id == "" || !fresh && !again {
		return
	}
	digests = digests[max(0, len(digests)-swarm.MaxHaveDigests):]
	_ = h.tracker.Have(ctx, swarm.HaveRequest{PeerID: id, Token: token, Channel: hostileChannel, Digests: digests})
}

// window gets the proxies' form of the channel's playlist.
func (h *hostilePeer) window(ctx context.Context) (*playlist.Window, error) {
	body, err := h.get(ctx, "/live/"+hostileChannel+"/index.m3u8?"+swarm.PeerPlaylistQuery)
	if err != nil {
		return nil, err
	}
	return playlist.ParseGateway(body)
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

// newest returns the newest digest the peer claimed and its peer ID.
func (h *hostilePeer) newest() (digest, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last, h.id
}

// refused returns the error of the last heartbeat if the gateway refused it.
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
