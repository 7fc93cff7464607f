package peerassist

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/portmap"
	"github.com/rawflow/rawflow/internal/stuntest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// testProxy is a running proxy on a fake gateway, joined to channel tv.
// playAll has p's player request every segment of gw's window, with 10 s of buffer
// (CMCD: no hurry), and requires each to be served.
func playAll(t *testing.T, p *testProxy, gw *fakeGateway) {
	t.Helper()
	for _, s := range gw.window.Segments {
		resp, body := httpGet(t, p.player.URL+"/live/tv/"+s.Name+"?CMCD=bl%3D10000")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
}

type testProxy struct {
	*Proxy
	player, neighbour *httptest.Server
	serving           atomic.Int64 // player requests whose handler has not returned
	gatewayOrigin     string       // the fake gateway's origin
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
	return startProxyOn(t, gw, tweak, "")
}

// startProxyOn is startProxy whose first playlist request has query (e.g. a token).
func startProxyOn(t testing.TB, gw *fakeGateway, tweak func(*Config), query string) *testProxy {
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
	tp := &testProxy{Proxy: p, neighbour: httptest.NewServer(p.NeighbourHandler()), gatewayOrigin: g.URL}
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
	// Load the playlist; for a media playlist, wait until the membership has its peer ID
	// and its plan.
	resp, body := httpGet(t, tp.player.URL+"/live/tv/index.m3u8"+query)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.NotContains(t, body, "RAWFLOW")
	if gw.multivariant == nil {
		tp.waitPlan(t, "", func(swarm.Plan) bool { return true })
	}
	return tp
}

// waitPlan waits until the member of channel tv has a plan for rendition that ok accepts.
func (tp *testProxy) waitPlan(t testing.TB, rendition string, ok func(swarm.Plan) bool) {
	t.Helper()
	m := tp.member("tv")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if p, have := m.plan(t.Context(), rendition, 50*time.Millisecond); have && ok(p) && m.peerID() != "" {
			return
		}
		require.True(t, time.Now().Before(deadline), "no plan for %q", rendition)
	}
}

// fromSource accepts a plan whose stripes' first source is id.
func fromSource(id string) func(swarm.Plan) bool {
	return func(p swarm.Plan) bool { return len(p.Stripes[0].Sources) > 0 && p.Stripes[0].Sources[0].ID == id }
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

func neighbourFunc(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// TestSiteRootTriesItsFeeders: the root of a site's cell whose plan names feeders (its
// group's peers that neighbours can dial) gets a segment from them, not from the gateway;
// when they fail, from the gateway, as a root.
func TestSiteRootTriesItsFeeders(t *testing.T) {
	gw := newFakeGateway(2)
	var fed atomic.Int32
	feeder := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		fed.Add(1)
		for _, seg := range gw.window.Segments {
			if strings.HasSuffix(r.URL.Path, seg.Digest.String()) {
				_, _ = w.Write(gw.data[seg.Name])
				return
			}
		}
		http.NotFound(w, r)
	})
	gw.set(func(g *fakeGateway) { g.rootFed, g.sources = true, []swarm.Source{{ID: "feeder", Addr: feeder}} })
	p := startProxy(t, gw, nil)
	seg := gw.window.Segments[0]
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Equal(t, int32(1), fed.Load())
	assert.Zero(t, gw.hitCount(seg.Name), "not from the gateway")
	assert.Positive(t, p.Status().Totals.BytesFromPeers)
	assert.Zero(t, p.Status().Channels["tv"].Roots, "fed: no root fetch from the gateway")

	// A feeder that is gone: the gateway, asked as a root.
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	goneAddr := gone.Addr().String()
	require.NoError(t, gone.Close())
	gw2 := newFakeGateway(2)
	var role atomic.Value
	gw2.intercept = func(_ http.ResponseWriter, r *http.Request) bool {
		role.Store(r.Header.Get(swarm.FetchHeader))
		return false
	}
	gw2.set(func(g *fakeGateway) { g.rootFed, g.sources = true, []swarm.Source{{ID: "gone", Addr: goneAddr}} })
	p2 := startProxy(t, gw2, nil)
	seg = gw2.window.Segments[1]
	resp, body = httpGet(t, p2.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, string(gw2.data[seg.Name]), body)
	assert.Equal(t, 1, gw2.hitCount(seg.Name), "a dead feeder: the gateway")
	assert.Equal(t, swarm.FetchRoot, role.Load(), "asked as a root")
	assert.Equal(t, int64(1), p2.Status().Channels["tv"].Roots)
}

// TestLadderFollowsPlan: a segment of a stripe the proxy is the root of comes from the
// gateway; one of another stripe from the stripe's sources in order: the parent, then the
// next ancestor when the parent fails, never the gateway while a source delivers.
func TestLadderFollowsPlan(t *testing.T) {
	gw := newFakeGateway(3)
	var parentHits, ancestorHits atomic.Int32
	parent := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		parentHits.Add(1)
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	ancestor := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		ancestorHits.Add(1)
		for _, s := range gw.window.Segments {
			if r.URL.Path == swarm.NeighbourSegmentPath+s.Digest.String() {
				assert.Equal(t, "1", r.Header.Get(hopsHeader), "one hop from the player's proxy")
				_, _ = w.Write(gw.data[s.Name])
			}
		}
	})
	gw.setSources(swarm.Source{ID: strings.Repeat("1", 32), Addr: parent, Group: "paris"},
		swarm.Source{ID: strings.Repeat("2", 32), Addr: ancestor, Group: "paris"})
	p := startProxy(t, gw, nil)
	seg := gw.window.Segments[1]
	// The player has 10 s of buffer (CMCD): time for the swarm, no urgency.
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Equal(t, int32(1), parentHits.Load(), "the parent first")
	assert.Equal(t, int32(1), ancestorHits.Load(), "then the next ancestor")
	assert.Zero(t, gw.hitCount(seg.Name), "not the gateway")
	st := p.Status().Channels["tv"]
	assert.Equal(t, int64(1), st.NeighbourFailures)
	assert.Equal(t, seg.Size, st.BytesFromPeers)

	gw.setSources() // root of every stripe now
	p.waitPlan(t, "", func(pl swarm.Plan) bool { return pl.Stripes[0].Root })
	other := gw.window.Segments[2]
	resp, _ = httpGet(t, p.player.URL+"/live/tv/"+other.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 1, gw.hitCount(other.Name), "the root fetches from the gateway")
	assert.Equal(t, int64(1), p.Status().Channels["tv"].Roots)
}

func TestLadderPrefersVerifiedNeighbour(t *testing.T) {
	gw := newFakeGateway(3)
	seg := gw.window.Segments[1]
	addr := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, swarm.NeighbourSegmentPath+seg.Digest.String(), r.URL.Path)
		_, _ = w.Write(gw.data[seg.Name])
	})
	gw.setSources(source(addr))
	p := startProxy(t, gw, nil)

	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Zero(t, gw.hitCount(seg.Name), "not fetched from the gateway")
	st := p.Status().Channels["tv"]
	assert.Equal(t, int64(1), st.SegmentsFromPeers)
	assert.Equal(t, seg.Size, st.BytesFromPeers)

	// Now this proxy serves it to its own neighbours.
	resp, body = neighbourGet(t, p.neighbour.URL, swarm.NeighbourSegmentPath+seg.Digest.String())
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
			src := source(neighbourFunc(t, h))
			gw.setSources(src)
			p := startProxy(t, gw, nil)
			resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, string(gw.data[seg.Name]), body, "the player gets the gateway's bytes")
			assert.Equal(t, 1, gw.hitCount(seg.Name))
			st := p.Status().Channels["tv"]
			assert.Equal(t, int64(1), st.IntegrityFailures+st.NeighbourFailures)
			assert.False(t, p.neigh.usable(src.ID, time.Now()), "skipped for a while")
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
	gw.setSources(source(dead))
	p := startProxy(t, gw, nil)
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Equal(t, int64(1), p.Status().Channels["tv"].NeighbourFailures)
	assert.Equal(t, map[string]int64{"failed": 1}, p.Status().Channels["tv"].SwarmMisses, "the miss, by its cause")
}

// TestGatewayNotYetIsAskedAgain: a gateway that answers 404 for a listed segment (in a
// fleet, the one a load balancer picked may be a moment behind the one that listed it) is
// asked again until it serves it; the player never sees the 404.
func TestGatewayNotYetIsAskedAgain(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	data := gw.data[seg.Name]
	var asked atomic.Int64
	gw.onSegment = func(name string) {
		if name == seg.Name && asked.Add(1) == 3 { // from the third request on, it is there
			gw.set(func(g *fakeGateway) { g.data[seg.Name] = data })
		}
	}
	delete(gw.data, seg.Name)
	p := startProxy(t, gw, nil)
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, string(data), body)
	assert.Equal(t, int64(3), asked.Load(), "two 404s, then the segment")
}

// TestGatewayGoneIsFinal: a 404 for a segment learnt notYetFor ago or more (a gateway that
// restarted on a new window) is passed to the player at once, asked once.
func TestGatewayGoneIsFinal(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	delete(gw.data, seg.Name)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := startProxy(t, gw, func(c *Config) { c.Now = clock })
	mu.Lock()
	now = now.Add(notYetFor)
	mu.Unlock()
	resp, _ := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, 1, gw.hitCount(seg.Name), "asked once")
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
	wg.Go(func() { _, bodies[3] = neighbourGet(t, p.neighbour.URL, swarm.NeighbourSegmentPath+d.String()) })
	close(gw.release)
	wg.Wait()
	for _, b := range bodies {
		assert.Equal(t, string(gw.data[seg.Name]), b)
	}
	assert.Equal(t, 1, gw.hitCount(seg.Name), "one gateway fetch")
}

// TestNeighbourPortPullsThrough: the neighbour port serves a segment the gateway listed to
// this proxy by fetching it through its plan (here, as root, from the gateway), once; it
// serves nothing else, nor pulls through for a request that came through maxHops hops.
func TestNeighbourPortPullsThrough(t *testing.T) {
	gw := newFakeGateway(2)
	p := startProxy(t, gw, nil)
	seg := gw.window.Segments[0]
	for range 2 {
		resp, body := neighbourGet(t, p.neighbour.URL, swarm.NeighbourSegmentPath+seg.Digest.String())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, string(gw.data[seg.Name]), body)
	}
	assert.Equal(t, 1, gw.hitCount(seg.Name), "fetched once, then from the cache")

	req, err := http.NewRequest(http.MethodGet, p.neighbour.URL+swarm.NeighbourSegmentPath+gw.window.Segments[1].Digest.String(), nil)
	require.NoError(t, err)
	req.Header.Set(hopsHeader, fmt.Sprint(maxHops))
	resp, err := http.DefaultClient.Do(asNeighbour(req))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "too many hops: not pulled through")
	assert.Zero(t, gw.hitCount(gw.window.Segments[1].Name))

	resp, _ = neighbourGet(t, p.neighbour.URL, swarm.NeighbourSegmentPath+playlist.Sum([]byte("unknown")).String())
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a segment the gateway never listed here")
	resp, _ = neighbourGet(t, p.neighbour.URL, swarm.NeighbourSegmentPath+"..%2f..%2fetc")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = httpGet(t, p.neighbour.URL+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestPortMappingResubscribes: once the router forwards the neighbour port, the stream
// subscribes again advertising the router's public address and port, and Status and
// /metrics say so; once the forwarding is lost, the bound address again; and a gateway whose
// address policy is not public (its viewers on its LAN) gets the bound address throughout.
func TestPortMappingResubscribes(t *testing.T) {
	gw := newFakeGateway(2)
	gw.addrPolicy = "public" // the internet's
	p := startProxy(t, gw, nil)
	addrs := func() string {
		subs := gw.subscriptions()
		if len(subs) == 0 {
			return ""
		}
		return subs[len(subs)-1].Addr
	}
	waitAddr := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); addrs() != want; time.Sleep(20 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "subscribed with %q, want %q", addrs(), want)
		}
	}
	waitAddr("127.0.0.1:1")
	assert.Nil(t, p.Status().PortMapping)

	p.setPortMapping(portmap.Mapping{External: netip.MustParseAddrPort("11.0.0.2:40000"), Method: portmap.UPnP})
	waitAddr("11.0.0.2:40000")
	assert.Equal(t, &PortMapping{External: "11.0.0.2:40000", Method: "upnp"}, p.Status().PortMapping)
	fams := scrape(t, p.player.URL+"/metrics")
	got := map[string]float64{}
	for _, m := range fams["rawflow_peer_port_mapped"].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	assert.Equal(t, map[string]float64{"nat-pmp": 0, "upnp": 1}, got)

	p.setPortMapping(portmap.Mapping{})
	waitAddr("127.0.0.1:1")
	assert.Nil(t, p.Status().PortMapping)

	p.policy.Store(int32(swarm.AddrPrivate))
	p.setPortMapping(portmap.Mapping{External: netip.MustParseAddrPort("11.0.0.2:40000"), Method: portmap.UPnP})
	assert.Equal(t, "127.0.0.1:1", p.advertiseAddr(), "a LAN gateway: the bound address")
}

// TestNATTested: a proxy whose gateway answers STUN on two ports tests its NAT with them
// and shows the answer in its status: one public port for both is a cone NAT, a port for
// each a symmetric one, and then it subscribes again, as such, at its first hello; no
// second port, no test.
func TestNATTested(t *testing.T) {
	for _, c := range []struct {
		name      string
		alt, want string
	}{{"cone", "same", swarm.NATCone}, {"symmetric", "shifted", swarm.NATSymmetric}, {"one port", "none", ""}} {
		t.Run(c.name, func(t *testing.T) {
			gw := newFakeGateway(2)
			gw.stunPorts[0] = stuntest.Serve(t, 0)
			switch c.alt {
			case "same":
				gw.stunPorts[1] = stuntest.Serve(t, 0)
			case "shifted":
				gw.stunPorts[1] = stuntest.Serve(t, 3)
			}
			p := startProxy(t, gw, nil)
			require.NotNil(t, p.link, "the test needs WebRTC on")
			last := func() swarm.Subscription {
				subs := gw.subscriptions()
				return subs[len(subs)-1]
			}
			if c.want == "" {
				assert.Empty(t, last().NAT)
				assert.Empty(t, p.Status().NAT)
				return
			}
			for deadline := time.Now().Add(5 * time.Second); p.Status().NAT != c.want; time.Sleep(20 * time.Millisecond) {
				require.True(t, time.Now().Before(deadline), "found nat %q, want %q", p.Status().NAT, c.want)
			}
			if c.want == swarm.NATCone {
				// The tracker plans "cone" as it does "": no second stream for it.
				assert.Len(t, gw.subscriptions(), 1)
				return
			}
			for deadline := time.Now().Add(5 * time.Second); len(gw.subscriptions()) < 2; time.Sleep(20 * time.Millisecond) {
				require.True(t, time.Now().Before(deadline), "the first stream ends at its hello, and the next one opens")
			}
			subs := gw.subscriptions()
			require.Len(t, subs, 2)
			assert.Empty(t, subs[0].NAT)
			assert.Equal(t, c.want, subs[1].NAT)
		})
	}
}

// TestBehindNAT: the neighbour port is forwarded when bound on every address or a private one,
// never on loopback or a public address.
func TestBehindNAT(t *testing.T) {
	for ip, want := range map[string]bool{
		"0.0.0.0": true, "::": true, "192.168.1.2": true, "10.0.0.5": true, "100.64.1.1": true, "fd00::1": true,
		"127.0.0.1": false, "::1": false, "203.0.113.9": false, "2001:db8::1": false,
	} {
		assert.Equal(t, want, behindNAT(net.ParseIP(ip)), ip)
	}
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

// TestReportsAndSegmentEvents: the stream subscribed to what the player plays, with the
// proxy's address; a segment event makes the segment known (and so served to neighbours);
// reports carry the counters once, with the peer's token.
func TestReportsAndSegmentEvents(t *testing.T) {
	gw := newFakeGateway(2)
	p := startProxy(t, gw, nil)
	subs := gw.subscriptions()
	require.NotEmpty(t, subs)
	assert.Equal(t, swarm.Subscription{Channel: "tv", Renditions: []string{""}, Addr: "127.0.0.1:1", ICE: true,
		Cert: p.CertFingerprint()}, subs[len(subs)-1], "with the neighbour port's certificate")
	assert.Len(t, p.CertFingerprint(), 64)

	b := []byte("a segment the playlist does not list yet")
	d := playlist.Sum(b)
	gw.data["9-new.ts"] = b
	ev, err := json.Marshal(swarm.SegmentEvent{Seq: 9, Name: "9-new.ts", Digest: d.String(), Size: int64(len(b)), DurationMS: 2000})
	require.NoError(t, err)
	gw.set(func(g *fakeGateway) {
		for ch := range g.streams {
			ch <- []byte("event: segment\ndata: " + string(ev) + "\n\n")
		}
	})
	m := p.member("tv")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, ok := m.knownDigest(d); ok {
			break
		}
		require.True(t, time.Now().Before(deadline), "the segment event was not learnt")
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := neighbourGet(t, p.neighbour.URL, swarm.NeighbourSegmentPath+d.String())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(b), body)

	for _, s := range gw.window.Segments {
		resp, _ := httpGet(t, p.player.URL+"/live/tv/"+s.Name)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
	require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
	reps := gw.reported()
	require.Len(t, reps, 2)
	assert.Equal(t, "tok-1", reps[0].Token)
	assert.Equal(t, gw.window.Segments[0].Size+gw.window.Segments[1].Size+int64(len(b)), reps[0].Stats.BytesFromGateway)
	assert.True(t, reps[1].Stats.IsZero(), "nothing twice")
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
// restarted with a new peer key) makes the proxy join afresh.
func TestRejoinWhenUnauthorized(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	m := p.member("tv")
	id, token := m.credentials()
	require.NotEmpty(t, id)
	assert.Equal(t, "tok-1", token)

	joined := gw.joins()
	gw.set(func(g *fakeGateway) { g.reject = true })
	require.ErrorIs(t, m.sendReport(t.Context(), p.Proxy, false), swarm.ErrUnauthorized)
	// The proxy forgets the refused ID and joins afresh (without credentials), at once, in
	// the background: the fake answers fresh joins even while it refuses old IDs.
	for deadline := time.Now().Add(5 * time.Second); gw.joins() == joined; {
		require.True(t, time.Now().Before(deadline), "no fresh join after the 401")
		m.signal()
		p.waitPlan(t, "", func(swarm.Plan) bool { return true })
	}
	assert.Greater(t, gw.joins(), joined, "a fresh join")
}

// TestRepeatedFailuresReported: a neighbour that keeps failing without lying is reported to
// the gateway after reportAfterFailures failures in a row; a proxy the gateway then refuses
// as an uploader (403) goes on as a leech.
func TestRepeatedFailuresReported(t *testing.T) {
	gw := newFakeGateway(reportAfterFailures)
	failing := strings.Repeat("f", 32)
	addr := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	gw.setSources(swarm.Source{ID: failing, Addr: addr})
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
	require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
	reps := gw.reported()
	assert.Equal(t, []string{failing}, reps[len(reps)-1].Banned)

	gw.set(func(g *fakeGateway) { g.forbid = true })
	m.signal() // the stream is opened again: refused as an uploader, then as a leech
	for deadline := time.Now().Add(5 * time.Second); ; {
		subs := gw.subscriptions()
		if last := subs[len(subs)-1]; last.Leech && m.streaming() {
			break
		}
		require.True(t, time.Now().Before(deadline), "not back as a leech")
		time.Sleep(5 * time.Millisecond)
	}
	assert.False(t, p.advertising())
}

// TestConnectionsReused: twelve segments, six from a neighbour and six from the gateway,
// one after another, open one connection to the neighbour and at most one more to the
// gateway (besides those the proxy had opened at its start): no connection per transfer.
func TestConnectionsReused(t *testing.T) {
	gw := newFakeGateway(12)
	var neighbourConns atomic.Int64
	ns := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, s := range gw.window.Segments {
			if r.URL.Path == swarm.NeighbourSegmentPath+s.Digest.String() {
				_, _ = w.Write(gw.data[s.Name])
				return
			}
		}
		http.NotFound(w, r)
	}))
	ns.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			neighbourConns.Add(1)
		}
	}
	ns.Start()
	t.Cleanup(ns.Close)
	gw.setSources(source(strings.TrimPrefix(ns.URL, "http://")))
	p := startProxy(t, gw, nil)
	opened := p.Status().Connections
	get := func(s playlist.Segment) {
		resp, body := httpGet(t, p.player.URL+"/live/tv/"+s.Name+"?CMCD=bl%3D10000")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	for _, s := range gw.window.Segments[:6] {
		get(s)
	}
	gw.setSources()
	p.waitPlan(t, "", func(pl swarm.Plan) bool { return pl.Stripes[0].Root })
	for _, s := range gw.window.Segments[6:] {
		get(s)
	}
	st := p.Status()
	assert.Equal(t, int64(6), st.Channels["tv"].SegmentsFromPeers)
	assert.Equal(t, int64(6), st.Channels["tv"].SegmentsFromGateway)
	assert.Equal(t, int64(1), neighbourConns.Load(), "one connection to the neighbour for six transfers")
	assert.LessOrEqual(t, st.Connections-opened, int64(2), "connections opened for twelve transfers")
}
