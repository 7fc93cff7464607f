package peerassist

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// fakeGateway serves a fixed window (proxies' form), its segments, and a tracker whose
// lookup answer the test sets.
type fakeGateway struct {
	window playlist.Window
	data   map[string][]byte // by path below /live/tv/
	// renditions are the windows of /live/tv/{rendition}/index.m3u8 (addRendition), and
	// multivariant, if set, is served as /live/tv/index.m3u8 instead of window.
	renditions   map[string]*playlist.Window
	multivariant []byte
	// release, if set, must be closed before segment requests are answered.
	release chan struct{}
	// onSegment, if set, is called with the path below /live/tv/ of every segment request
	// before it is answered.
	onSegment func(name string)

	mu              sync.Mutex // guards the following fields
	reject          bool       // answer heartbeats (announces with a peer ID) 401
	forbid          bool       // answer announces that offer uploads 403
	failAnnounces   bool       // answer announces 500
	announces       []swarm.AnnounceRequest
	heartbeatTokens []string
	hits            map[string]int
	lookup          swarm.LookupResponse
	lookupSeq       []swarm.LookupResponse // answered first, in order, before lookup
	lookups         int                    // lookups received
	haves           []string
}

func newFakeGateway(n int) *fakeGateway {
	g := &fakeGateway{data: map[string][]byte{}, hits: map[string]int{}, lookup: swarm.LookupResponse{Fetch: true}}
	g.window.TargetDuration = 2
	for i := range n {
		b := []byte(strings.Repeat(fmt.Sprintf("segment %d;", i), 500))
		d := playlist.Sum(b)
		name := playlist.SegmentName(uint64(i), d, ".ts")
		g.data[name] = b
		g.window.Segments = append(g.window.Segments, playlist.Segment{Seq: uint64(i), Name: name, Duration: 2, Digest: d, Size: int64(len(b))})
	}
	return g
}

func (g *fakeGateway) setLookup(r swarm.LookupResponse) { g.mu.Lock(); g.lookup = r; g.mu.Unlock() }

// addRendition lists n segments of rendition r's own under /live/tv/{r}/.
func (g *fakeGateway) addRendition(r string, n int) {
	w := &playlist.Window{TargetDuration: 2}
	for i := range n {
		b := []byte(strings.Repeat(fmt.Sprintf("%s segment %d;", r, i), 400+100*i))
		d := playlist.Sum(b)
		name := playlist.SegmentName(uint64(i), d, ".ts")
		g.data[r+"/"+name] = b
		w.Segments = append(w.Segments, playlist.Segment{Seq: uint64(i), Name: name, Duration: 2, Digest: d, Size: int64(len(b))})
	}
	if g.renditions == nil {
		g.renditions = map[string]*playlist.Window{}
	}
	g.renditions[r] = w
}

// announced returns the announces received so far, accepted or not.
func (g *fakeGateway) announced() []swarm.AnnounceRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.announces)
}

func (g *fakeGateway) hitCount(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits[name]
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.hits[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
	lookup := g.lookup
	if r.URL.Path == swarm.PathLookup {
		g.lookups++
		if len(g.lookupSeq) > 0 {
			lookup, g.lookupSeq = g.lookupSeq[0], g.lookupSeq[1:]
		}
	}
	g.mu.Unlock()
	rendition, isPlaylist := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/live/tv/"), "/index.m3u8")
	switch {
	case r.URL.Path == "/live/tv/index.m3u8" && g.multivariant != nil:
		_, _ = w.Write(g.multivariant)
	case r.URL.Path == "/live/tv/index.m3u8":
		_, _ = w.Write(playlist.Render(g.window, playlist.ForProxies))
	case isPlaylist && g.renditions[rendition] != nil:
		_, _ = w.Write(playlist.Render(*g.renditions[rendition], playlist.ForProxies))
	case r.URL.Path == swarm.PathAnnounce:
		var req swarm.AnnounceRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		g.mu.Lock()
		reject, forbid, fail := g.reject && req.PeerID != "", g.forbid, g.failAnnounces
		if req.PeerID != "" {
			g.heartbeatTokens = append(g.heartbeatTokens, req.Token)
		}
		g.announces = append(g.announces, req)
		g.mu.Unlock()
		if err := req.Validate(); err != nil { // as the gateway does
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if fail {
			http.Error(w, "registry down", http.StatusInternalServerError)
			return
		}
		if reject {
			http.Error(w, "unknown peer", http.StatusUnauthorized)
			return
		}
		if forbid && !req.Leech {
			http.Error(w, "banned", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(swarm.AnnounceResponse{PeerID: strings.Repeat("a", 32), Token: "tok-1", IntervalMS: 60000})
	case r.URL.Path == swarm.PathLookup:
		_ = json.NewEncoder(w).Encode(lookup)
	case r.URL.Path == swarm.PathHave:
		var req swarm.HaveRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		g.mu.Lock()
		g.haves = append(g.haves, req.Digests...)
		g.mu.Unlock()
	case strings.HasPrefix(r.URL.Path, "/live/tv/"):
		if g.release != nil {
			<-g.release
		}
		if g.onSegment != nil {
			g.onSegment(strings.TrimPrefix(r.URL.Path, "/live/tv/"))
		}
		b, ok := g.data[strings.TrimPrefix(r.URL.Path, "/live/tv/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	default:
		http.NotFound(w, r)
	}
}

// testProxy is a running proxy on a fake gateway, joined to channel tv.
type testProxy struct {
	*Proxy
	player, neighbour *httptest.Server
	serving           atomic.Int64 // player requests whose handler has not returned
}

// settle waits until every player request's handler has returned: a player may have the
// whole response before its handler's last steps (QoE accounting) ran.
func (tp *testProxy) settle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); tp.serving.Load() > 0; {
		require.True(t, time.Now().Before(deadline), "a player request's handler never returned")
		time.Sleep(time.Millisecond)
	}
}

func startProxy(t testing.TB, gw *fakeGateway, tweak func(*Config)) *testProxy {
	t.Helper()
	g := httptest.NewServer(gw)
	t.Cleanup(g.Close)
	cfg := Config{GatewayURL: g.URL, AdvertiseAddr: "127.0.0.1:1", NeighbourStall: 200 * time.Millisecond,
		NeighbourBudget: time.Second, noPrefetch: true}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := New(cfg)
	require.NoError(t, err)
	tp := &testProxy{Proxy: p, neighbour: httptest.NewServer(p.NeighbourHandler())}
	player := p.PlayerHandler()
	tp.player = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp.serving.Add(1)
		defer tp.serving.Add(-1)
		player.ServeHTTP(w, r)
	}))
	t.Cleanup(tp.player.Close)
	t.Cleanup(tp.neighbour.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Load the playlist, then wait until the membership has its peer ID.
	resp, body := httpGet(t, tp.player.URL+"/live/tv/index.m3u8")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.NotContains(t, body, "RAWFLOW")
	m := p.member("tv")
	for deadline := time.Now().Add(5 * time.Second); m.peerID() == ""; {
		require.True(t, time.Now().Before(deadline), "no announce")
		time.Sleep(5 * time.Millisecond)
	}
	return tp
}

func httpGet(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func holder(addr string) swarm.LookupResponse {
	return swarm.LookupResponse{Holders: []swarm.Holder{{Peer: swarm.Peer{ID: "n1" + addr, Addr: addr}, State: swarm.StateHave}}}
}

func neighbourFunc(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// TestLadderWaitsForItsGroup: when only another group (another site) holds a segment, the
// proxy asks the tracker again before fetching across: its own group's seeder is usually
// about to fetch it. When its group still has nobody, it takes the other group's.
func TestLadderWaitsForItsGroup(t *testing.T) {
	gw := newFakeGateway(3)
	seg := gw.window.Segments[1]
	served := func(hits *atomic.Int32) string { // a neighbour holding every segment
		return neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			for _, s := range gw.window.Segments {
				if r.URL.Path == swarm.NeighbourSegmentPath+s.Digest.String() {
					_, _ = w.Write(gw.data[s.Name])
				}
			}
		})
	}
	var near, far atomic.Int32
	nearAddr, farAddr := served(&near), served(&far)
	inGroup := func(addr, group string, state swarm.HolderState) swarm.LookupResponse {
		return swarm.LookupResponse{Holders: []swarm.Holder{{Peer: swarm.Peer{ID: "n1" + addr, Addr: addr, Group: group}, State: state}}}
	}
	gw.mu.Lock()
	gw.lookupSeq = []swarm.LookupResponse{inGroup(farAddr, "site-b", swarm.StateHave), inGroup(nearAddr, "site-a", swarm.StateHave)}
	gw.lookup = inGroup(nearAddr, "site-a", swarm.StateHave)
	gw.mu.Unlock()
	p := startProxy(t, gw, func(c *Config) { c.Group = "site-a" })
	// The player has 10 s of buffer (CMCD): time for the swarm, no urgency.
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Equal(t, int32(1), near.Load(), "fetched within its group")
	assert.Zero(t, far.Load(), "not across to the other group")

	other := gw.window.Segments[2] // only the other group has it, lookup after lookup
	gw.setLookup(inGroup(farAddr, "site-b", swarm.StateHave))
	far.Store(0)
	resp, _ = httpGet(t, p.player.URL+"/live/tv/"+other.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(1), far.Load(), "then from the other group")
	assert.Zero(t, gw.hitCount(other.Name), "rather than from the gateway")
}

func TestLadderPrefersVerifiedNeighbour(t *testing.T) {
	gw := newFakeGateway(3)
	seg := gw.window.Segments[1]
	addr := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, swarm.NeighbourSegmentPath+seg.Digest.String(), r.URL.Path)
		_, _ = w.Write(gw.data[seg.Name])
	})
	gw.setLookup(holder(addr))
	p := startProxy(t, gw, nil)

	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Zero(t, gw.hitCount(seg.Name), "not fetched from the gateway")
	st := p.Status().Channels["tv"]
	assert.Equal(t, int64(1), st.SegmentsFromPeers)
	assert.Equal(t, seg.Size, st.BytesFromPeers)

	// Now this proxy serves it to its own neighbours.
	resp, body = httpGet(t, p.neighbour.URL+swarm.NeighbourSegmentPath+seg.Digest.String())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Equal(t, seg.Size, p.Status().Channels["tv"].BytesUploaded)
}

// TestHostileNeighbours: whatever a neighbour does, the player gets the gateway's bytes.
func TestHostileNeighbours(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"wrong bytes": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 5500)) },
		"short":       func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("segment 0;")) },
		"too long": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(strings.Repeat("segment 0;", 500) + "x"))
		},
		"stalls": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("segment 0;"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
		"error status":  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) },
		"never answers": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"redirects": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			gw := newFakeGateway(1)
			seg := gw.window.Segments[0]
			gw.setLookup(holder(neighbourFunc(t, h)))
			p := startProxy(t, gw, nil)
			resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, string(gw.data[seg.Name]), body, "the player gets the gateway's bytes")
			assert.Equal(t, 1, gw.hitCount(seg.Name))
			st := p.Status().Channels["tv"]
			assert.Equal(t, int64(1), st.IntegrityFailures+st.NeighbourFailures)
			assert.False(t, p.neigh.usable("n1"+gw.lookup.Holders[0].Addr, time.Now()), "skipped for a while")
			if name == "stalls" {
				assert.Equal(t, int64(1), st.RangeCompletions, "the gateway completed the partial transfer")
			}
		})
	}
}

func TestDeadNeighbourFallsBackToGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	gw.setLookup(holder(dead))
	p := startProxy(t, gw, nil)
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Equal(t, int64(1), p.Status().Channels["tv"].NeighbourFailures)
}

// TestSharedFetch: concurrent requests for one segment make one gateway fetch, a player
// that goes away does not cancel it, and the neighbour port waits for it.
func TestSharedFetch(t *testing.T) {
	gw := newFakeGateway(1)
	gw.release = make(chan struct{})
	seg := gw.window.Segments[0]
	p := startProxy(t, gw, nil)

	// A player that gives up at once.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.player.URL+"/live/tv/"+seg.Name, nil)
	gone := make(chan struct{})
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		close(gone)
	}()
	d := seg.Digest
	for p.flights.Get(d) == nil { // the fetch is under way
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-gone

	var wg sync.WaitGroup
	bodies := make([]string, 4)
	for i := range 3 {
		wg.Go(func() { _, bodies[i] = httpGet(t, p.player.URL+"/live/tv/"+seg.Name) })
	}
	wg.Go(func() { _, bodies[3] = httpGet(t, p.neighbour.URL+swarm.NeighbourSegmentPath+d.String()) })
	close(gw.release)
	wg.Wait()
	for _, b := range bodies {
		assert.Equal(t, string(gw.data[seg.Name]), b)
	}
	assert.Equal(t, 1, gw.hitCount(seg.Name), "one gateway fetch")
}

func TestNeighbourPortServesOnlyWhatItHolds(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	resp, _ := httpGet(t, p.neighbour.URL+swarm.NeighbourSegmentPath+gw.window.Segments[0].Digest.String())
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = httpGet(t, p.neighbour.URL+swarm.NeighbourSegmentPath+"..%2f..%2fetc")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = httpGet(t, p.neighbour.URL+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(250)
	for i := range 5 {
		c.add(&segment{digest: playlist.Sum([]byte{byte(i)}), data: make([]byte, 100)})
	}
	bytes, n := c.size()
	assert.Equal(t, int64(200), bytes)
	assert.Equal(t, 2, n)
	assert.NotNil(t, c.get(playlist.Sum([]byte{4})))
	assert.Nil(t, c.get(playlist.Sum([]byte{0})))
}

func TestHavesAnnounced(t *testing.T) {
	gw := newFakeGateway(2)
	p := startProxy(t, gw, nil)
	for _, s := range gw.window.Segments {
		resp, _ := httpGet(t, p.player.URL+"/live/tv/"+s.Name)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		gw.mu.Lock()
		n := len(gw.haves)
		gw.mu.Unlock()
		if n == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "haves not announced")
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNoPrefetchForEndedPlaylists: a VOD playlist's newest segments are its last ones;
// the proxy does not fetch them ahead of the player.
func TestNoPrefetchForEndedPlaylists(t *testing.T) {
	m := newMember("tv")
	w := newFakeGateway(4).window
	w.Ended = true
	m.learn("", &w, time.Now(), true)
	assert.Empty(t, m.fresh, "nothing queued for prefetch")
	w.Ended = false
	w.Segments = append(w.Segments, newFakeGateway(5).window.Segments[4])
	m.learn("", &w, time.Now(), true)
	assert.Len(t, m.fresh, 1, "live: the new segment is queued")
}

// TestGatewayStallEnds: a gateway transfer that stops delivering bytes is ended after
// gatewayStall (not held until a whole-transfer timeout), and the player gets an error.
func TestGatewayStallEnds(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	p := startProxy(t, gw, nil)
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(seg.Size))
		_, _ = w.Write(gw.data[seg.Name][:100])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer stuck.Close()
	u, err := url.Parse(stuck.URL)
	require.NoError(t, err)
	p.gateway = u // segment requests now go to the stuck server
	start := time.Now()
	resp, _ := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Less(t, time.Since(start), gatewayStall+5*time.Second, "ended by the stall timer, long before the fetch's own bound")
}

// TestRejoinWhenUnauthorized: a gateway that no longer accepts the proxy's peer ID (it was
// restarted with a new peer key) makes the proxy join afresh at once.
func TestRejoinWhenUnauthorized(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	m := p.member("tv")
	id, token := m.credentials()
	require.NotEmpty(t, id)
	assert.Equal(t, "tok-1", token)

	assert.Positive(t, m.announce(t.Context(), p.Proxy), "a heartbeat")
	gw.mu.Lock()
	assert.Equal(t, []string{"tok-1"}, gw.heartbeatTokens, "heartbeats carry the token")
	gw.reject = true
	gw.mu.Unlock()
	assert.Zero(t, m.announce(t.Context(), p.Proxy), "refused: announce again at once")
	id, _ = m.credentials()
	assert.Empty(t, id, "the old ID is forgotten")
	assert.Positive(t, m.announce(t.Context(), p.Proxy), "a fresh join")
	id, _ = m.credentials()
	assert.NotEmpty(t, id)
}

// TestRepeatedFailuresReported: a neighbour that keeps failing without lying is reported to
// the gateway after reportAfterFailures failures in a row; a proxy the gateway then refuses
// as an uploader (403) goes on as a leech.
func TestRepeatedFailuresReported(t *testing.T) {
	gw := newFakeGateway(reportAfterFailures)
	failing := strings.Repeat("f", 32)
	addr := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	gw.setLookup(swarm.LookupResponse{Holders: []swarm.Holder{{Peer: swarm.Peer{ID: failing, Addr: addr}, State: swarm.StateHave}}})
	var mu sync.Mutex
	now := time.Now()
	p := startProxy(t, gw, func(c *Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	m := p.member("tv")
	for i, seg := range gw.window.Segments {
		resp, _ := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		m.mu.Lock()
		reported := slices.Contains(m.banned, failing)
		m.mu.Unlock()
		assert.Equal(t, i+1 == reportAfterFailures, reported, "after failure %d", i+1)
		mu.Lock()
		now = now.Add(skipAfterFailure) // usable again
		mu.Unlock()
	}

	gw.mu.Lock()
	gw.forbid = true
	gw.mu.Unlock()
	assert.Zero(t, m.announce(t.Context(), p.Proxy), "refused: announce again at once, as a leech")
	assert.False(t, p.advertising())
	assert.Positive(t, m.announce(t.Context(), p.Proxy), "a leech is accepted")
}
