package peerassist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// fakeGateway serves a fixed window (proxies' form), its segments, and a tracker: event
// streams that carry the plan the test sets (every stripe alike), and reports, recorded.
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
	// intercept, if set, sees every segment request first, and answers it when it returns
	// true.
	intercept func(w http.ResponseWriter, r *http.Request) bool

	mu         sync.Mutex // guards the following fields
	reject     bool       // answer calls with credentials 401
	addrPolicy string     // announced in Hello
	origins    []string   // announced in Hello
	stunPorts  [2]int     // STUNPort and STUNAltPort announced in Hello
	down       bool       // answer /live requests 503 (an outage)
	// token, if set, signs the channel: /live requests without it get 403, and playlists
	// carry it in their URIs, as the gateway's --sign-key does.
	token       string
	forbid      bool // answer streams that offer uploads 403
	failReports bool // answer reports 500
	subs        []swarm.Subscription
	fresh       int // streams opened without credentials (joins)
	reports     []swarm.ReportRequest
	hits        map[string]int
	sources     []swarm.Source                     // every stripe's sources; none: root
	rootFed     bool                               // every stripe's plan is a root's, with sources (a site's root, fed)
	streams     map[chan []byte]swarm.Subscription // open streams, with what they subscribed
}

func newFakeGateway(n int) *fakeGateway {
	// Its neighbours, test servers, are on 127.0.0.1.
	g := &fakeGateway{data: map[string][]byte{}, hits: map[string]int{}, streams: map[chan []byte]swarm.Subscription{}, addrPolicy: "loopback"}
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

// setSources makes every stripe's sources srcs (none: root) in the plans of every stream,
// open or to come.
func (g *fakeGateway) setSources(srcs ...swarm.Source) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sources = srcs
	for ch, sub := range g.streams {
		for _, r := range sub.Renditions {
			ch <- g.planEvent(r)
		}
	}
}

// source is a neighbour at addr in plans.
func source(addr string) swarm.Source { return swarm.Source{ID: "n1" + addr, Addr: addr} }

// planEvent encodes the plan of rendition r (g.mu held).
func (g *fakeGateway) planEvent(r string) []byte {
	p := swarm.Plan{Rendition: r, Stripes: make([]swarm.StripePlan, swarm.Stripes)}
	for i := range p.Stripes {
		p.Stripes[i] = swarm.StripePlan{Root: len(g.sources) == 0 || g.rootFed, Sources: g.sources}
	}
	b, _ := json.Marshal(p)
	return []byte("event: plan\ndata: " + string(b) + "\n\n")
}

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

// reported returns the reports received so far, accepted or not.
func (g *fakeGateway) reported() []swarm.ReportRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.reports)
}

// subscriptions returns the streams opened so far, admitted or not.
func (g *fakeGateway) subscriptions() []swarm.Subscription {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.subs)
}

// joins counts the streams opened without credentials: the proxy's fresh joins.
func (g *fakeGateway) joins() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fresh
}

func (g *fakeGateway) set(f func(g *fakeGateway)) { g.mu.Lock(); f(g); g.mu.Unlock() }

func (g *fakeGateway) hitCount(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits[name]
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.hits[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
	g.mu.Unlock()
	rendition, isPlaylist := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/live/tv/"), "/index.m3u8")
	g.mu.Lock()
	token, down := g.token, g.down
	g.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/live/") {
		switch {
		case down:
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		case token != "" && r.URL.Query().Get(swarm.TokenQuery) != token:
			http.Error(w, "token invalid", http.StatusForbidden)
			return
		case token != "" && r.URL.Path == "/live/tv/index.m3u8":
			var b strings.Builder
			for line := range strings.Lines(string(playlist.Render(g.window, playlist.ForProxies))) {
				if !strings.HasPrefix(line, "#") && strings.TrimSpace(line) != "" {
					line = strings.TrimSpace(line) + "?token=" + token + "\n"
				}
				b.WriteString(line)
			}
			_, _ = w.Write([]byte(b.String()))
			return
		}
	}
	switch {
	case r.URL.Path == "/live/tv/index.m3u8" && g.multivariant != nil:
		_, _ = w.Write(g.multivariant)
	case r.URL.Path == "/live/tv/index.m3u8":
		_, _ = w.Write(playlist.Render(g.window, playlist.ForProxies))
	case isPlaylist && g.renditions[rendition] != nil:
		_, _ = w.Write(playlist.Render(*g.renditions[rendition], playlist.ForProxies))
	case r.URL.Path == swarm.PathEvents:
		g.events(w, r)
	case r.URL.Path == swarm.PathReport:
		var req swarm.ReportRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		g.mu.Lock()
		g.reports = append(g.reports, req)
		reject, fail := g.reject, g.failReports
		g.mu.Unlock()
		switch err := req.Validate(); { // as the gateway does
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		case reject:
			http.Error(w, "unknown peer", http.StatusUnauthorized)
		case fail:
			http.Error(w, "registry down", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case strings.HasPrefix(r.URL.Path, "/live/tv/"):
		if g.release != nil {
			<-g.release
		}
		if g.onSegment != nil {
			g.onSegment(strings.TrimPrefix(r.URL.Path, "/live/tv/"))
		}
		if g.intercept != nil && g.intercept(w, r) {
			return
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

// events serves an event stream: hello, the plan of each rendition, then what setSources
// sends, until the proxy goes away.
func (g *fakeGateway) events(w http.ResponseWriter, r *http.Request) {
	sub, err := swarm.ParseSubscription(r.URL.Query())
	g.mu.Lock()
	g.subs = append(g.subs, sub)
	_, _, resumed := swarm.ParseAuth(r.Header.Get("Authorization"))
	reject, forbid := g.reject && resumed, g.forbid && !sub.Leech
	if !resumed {
		g.fresh++
	}
	g.mu.Unlock()
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case reject:
		http.Error(w, "unknown peer", http.StatusUnauthorized)
		return
	case forbid:
		http.Error(w, "banned", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	ch := make(chan []byte, 16)
	g.mu.Lock()
	hello, _ := json.Marshal(swarm.Hello{PeerID: strings.Repeat("a", 32), Token: "tok-1", ReportMS: 60000, AddrPolicy: g.addrPolicy, AllowOrigins: g.origins,
		STUNPort: g.stunPorts[0], STUNAltPort: g.stunPorts[1], SwarmKeys: swarm.ChannelKeys(fakePeerKey, "tv", time.Now()), TimeMS: time.Now().UnixMilli()})
	_, _ = fmt.Fprintf(w, "event: hello\ndata: %s\n\n", hello)
	for _, rd := range sub.Renditions {
		_, _ = w.Write(g.planEvent(rd))
	}
	g.streams[ch] = sub
	g.mu.Unlock()
	defer func() { g.mu.Lock(); delete(g.streams, ch); g.mu.Unlock() }()
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-ch:
			_, _ = w.Write(b)
			w.(http.Flusher).Flush()
		}
	}
}

// fakePeerKey is the fake gateway's peer key: the swarm keys of its hellos derive from it.
var fakePeerKey = []byte("fake gateway peer key")

// asNeighbour signs req as a proxy the fake gateway admitted to channel tv.
func asNeighbour(req *http.Request) *http.Request {
	keys := swarm.ChannelKeys(fakePeerKey, "tv", time.Now())
	cred, _ := swarm.SignNeighbourRequest(func(w int64) (swarm.ChannelKey, bool) {
		for _, k := range keys {
			if k.Window == w {
				return k, true
			}
		}
		return swarm.ChannelKey{}, false
	}, "tv", req.URL.Path, time.Now())
	req.Header.Set(swarm.NeighbourAuthHeader, cred)
	return req
}

// neighbourGet GETs path on a neighbour port at base as an admitted proxy.
func neighbourGet(t testing.TB, base, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(asNeighbour(req))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}
