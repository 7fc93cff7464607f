package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// fakeOrigin serves a live media playlist of segments seq first..first+n-1 named s<seq>.ts,
// whose bytes are "origin <epoch> segment <seq>" padded to 1000 bytes.
type fakeOrigin struct {
	mu       sync.Mutex // guards the following fields
	first, n int
	epoch    int    // bumped to simulate an origin restart with new content
	ended    bool   // the playlist ends with EXT-X-ENDLIST
	event    bool   // the playlist is of type EVENT
	header   string // written after EXT-X-VERSION: whole lines, each ending in "\n"
	hits     map[string]int
}

func (o *fakeOrigin) set(first, n, epoch int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.first, o.n, o.epoch = first, n, epoch
}

func (o *fakeOrigin) hitCount(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

func (o *fakeOrigin) body(seq int) []byte {
	b := make([]byte, 1000)
	copy(b, fmt.Sprintf("origin %d segment %d", o.epoch, seq))
	return b
}

func (o *fakeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hits == nil {
		o.hits = map[string]int{}
	}
	o.hits[r.URL.Path]++
	if r.URL.Path == "/live.m3u8" {
		fmt.Fprintf(w, "#EXTM3U\n#EXT-X-VERSION:3\n%s#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:%d\n", o.header, o.first)
		if o.event {
			fmt.Fprint(w, "#EXT-X-PLAYLIST-TYPE:EVENT\n")
		}
		for i := range o.n {
			fmt.Fprintf(w, "#EXTINF:2.000,\ns%d.ts\n", o.first+i)
		}
		if o.ended {
			fmt.Fprint(w, "#EXT-X-ENDLIST\n")
		}
		return
	}
	var seq int
	if _, err := fmt.Sscanf(r.URL.Path, "/s%d.ts", &seq); err != nil || seq < o.first || seq >= o.first+o.n {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write(o.body(seq))
}

// newTestServer returns a gateway on the fake origin with an in-memory registry, not running.
// Its window is of 5 segments, the fewest the default latency mode allows.
func newTestServer(t *testing.T, o *fakeOrigin) (*Server, *httptest.Server) {
	t.Helper()
	origin := httptest.NewServer(o)
	t.Cleanup(origin.Close)
	s, err := New(Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}}, WindowSegments: 5},
		swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	front := httptest.NewServer(s.Handler())
	t.Cleanup(front.Close)
	return s, front
}

// media discovers the test channel "tv" (a media origin) and returns its one rendition.
func media(t *testing.T, s *Server) *rendition {
	t.Helper()
	ch := s.channelMap()["tv"]
	require.NoError(t, s.discover(context.Background(), ch))
	r, err := ch.rendition("")
	require.NoError(t, err)
	return r
}

func listed(t *testing.T, s *Server) *playlist.Window {
	t.Helper()
	w, err := playlist.ParseGateway(proxiesForm(media(t, s).win))
	require.NoError(t, err)
	return w
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestIngestFetchesEachSegmentOnceAndOwnsTimeline(t *testing.T) {
	o := &fakeOrigin{}
	o.set(100, 7, 0)
	s, _ := newTestServer(t, o)
	in := media(t, s).ingest
	ctx := context.Background()

	require.NoError(t, in.poll(ctx))
	w := listed(t, s)
	require.Len(t, w.Segments, 5, "first poll takes the newest window's worth")
	assert.Equal(t, uint64(0), w.MediaSequence)

	require.NoError(t, in.poll(ctx)) // nothing new
	o.set(101, 7, 0)                 // one new segment
	require.NoError(t, in.poll(ctx))
	w = listed(t, s)
	assert.Equal(t, uint64(1), w.MediaSequence)
	for seq := 102; seq <= 107; seq++ {
		assert.Equal(t, 1, o.hitCount(fmt.Sprintf("/s%d.ts", seq)), "segment %d fetched once", seq)
	}

	// The origin restarts and numbers from 0 again: the gateway's sequence keeps rising
	// and the new content starts with a discontinuity.
	o.set(0, 2, 1)
	require.NoError(t, in.poll(ctx))
	w = listed(t, s)
	assert.Equal(t, uint64(3), w.MediaSequence)
	require.Len(t, w.Segments, 5)
	assert.True(t, w.Segments[3].Discontinuity, "restart starts a discontinuity")
	assert.Equal(t, uint64(7), w.Segments[4].Seq)
}

func TestIngestBadOriginKeepsWindow(t *testing.T) {
	o := &fakeOrigin{}
	o.set(0, 3, 0)
	s, _ := newTestServer(t, o)
	in := media(t, s).ingest
	require.NoError(t, in.poll(context.Background()))
	in.sources[0].Path = "/missing.m3u8"
	assert.Error(t, in.poll(context.Background()), "404 playlist")
	assert.Len(t, listed(t, s).Segments, 3, "previous window kept")
}

func TestServePlaylistsAndSegments(t *testing.T) {
	o := &fakeOrigin{}
	o.set(0, 3, 0)
	s, front := newTestServer(t, o)
	require.NoError(t, media(t, s).ingest.poll(context.Background()))
	w := listed(t, s)
	seg := w.Segments[0]

	resp, body := get(t, front.URL+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/vnd.apple.mpegurl", resp.Header.Get("Content-Type"))
	assert.Equal(t, "public, max-age=1", resp.Header.Get("Cache-Control"))
	assert.Contains(t, body, seg.Name)
	assert.NotContains(t, body, "RAWFLOW", "players never see digests")

	_, body = get(t, front.URL+"/live/tv/index.m3u8?"+swarm.PeerPlaylistQuery)
	assert.Contains(t, body, seg.Digest.String())

	resp, body = get(t, front.URL+"/live/tv/"+seg.Name)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "video/mp2t", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Cache-Control"), "immutable")
	assert.Equal(t, string(o.body(0)), body)
	assert.Equal(t, int64(1000), s.channelMap()["tv"].egress.Load())

	resp, body = get(t, front.URL+"/live/tv/"+seg.Name, "Range", "bytes=0-5")
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "origin", body)

	resp, _ = get(t, front.URL+"/live/tv/"+seg.Name, "If-None-Match", resp.Header.Get("ETag"))
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)

	for _, path := range []string{"/live/tv/nope.ts", "/live/radio/index.m3u8", "/live/tv/..%2f..%2fetc%2fpasswd", "/nothing"} {
		resp, _ = get(t, front.URL+path)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		assert.Equal(t, cacheError, resp.Header.Get("Cache-Control"), path)
	}
}

func TestReadyz(t *testing.T) {
	o := &fakeOrigin{}
	o.set(0, 3, 0)
	s, front := newTestServer(t, o)
	resp, _ := get(t, front.URL+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "nothing ingested yet")
	require.NoError(t, media(t, s).ingest.poll(context.Background()))
	resp, _ = get(t, front.URL+"/readyz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	s.cfg.Now = func() time.Time { return time.Now().Add(time.Minute) }
	resp, body := get(t, front.URL+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.True(t, strings.Contains(body, "tv"))
}

func TestRunStopsWithContext(t *testing.T) {
	o := &fakeOrigin{}
	o.set(0, 3, 0)
	s, _ := newTestServer(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	changed := media(t, s).win.next()
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	<-changed // the first segment is listed
	cancel()
	assert.NoError(t, <-done)
}

func TestIngestGapIsDiscontinuity(t *testing.T) {
	o := &fakeOrigin{}
	o.set(10, 3, 0)
	s, _ := newTestServer(t, o)
	in := media(t, s).ingest
	require.NoError(t, in.poll(context.Background()))
	o.set(11, 3, 0) // 13: contiguous
	require.NoError(t, in.poll(context.Background()))
	o.set(20, 3, 0) // 20-22: the origin moved on while we were away
	require.NoError(t, in.poll(context.Background()))
	w := listed(t, s)
	require.Len(t, w.Segments, 5)
	assert.True(t, w.Segments[2].Discontinuity, "a gap in the origin's numbering")
	assert.False(t, w.Segments[3].Discontinuity)
	assert.Equal(t, uint64(6), w.Segments[4].Seq, "our numbering stays contiguous")
}

func TestCORSAndGzip(t *testing.T) {
	o := &fakeOrigin{}
	o.set(0, 3, 0)
	s, front := newTestServer(t, o)
	require.NoError(t, media(t, s).ingest.poll(context.Background()))
	seg := listed(t, s).Segments[0]

	var (
		req  *http.Request
		resp *http.Response
		err  error
	)
	for _, path := range []string{"/live/tv/index.m3u8", "/live/tv/" + seg.Name} {
		req, _ = http.NewRequest(http.MethodOptions, front.URL+path, nil)
		req.Header.Set("Origin", "https://player.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "range")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNoContent, resp.StatusCode, path)
		assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), path)
		assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Range", path)
		assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "GET", path)
	}

	resp, _ = get(t, front.URL+"/live/tv/"+seg.Name, "Origin", "https://player.example")
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Content-Range")

	// Playlists are gzipped for clients that accept it; segments never are.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	for path, gz := range map[string]bool{"/live/tv/index.m3u8": true, "/live/tv/" + seg.Name: false} {
		req, _ = http.NewRequest(http.MethodGet, front.URL+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err = tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, gz, resp.Header.Get("Content-Encoding") == "gzip", path)
	}
}

// TestFailover: when the first origin keeps failing, the second takes over after a
// discontinuity, and the media sequence keeps rising.
func TestFailover(t *testing.T) {
	a, b := &fakeOrigin{}, &fakeOrigin{}
	a.set(50, 3, 0)
	b.set(7, 5, 1) // a window's worth: the new origin's first segment heads the window
	srvA, srvB := httptest.NewServer(a), httptest.NewServer(b)
	defer srvB.Close()
	s, err := New(Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{srvA.URL + "/live.m3u8", srvB.URL + "/live.m3u8"}}},
		WindowSegments: 5, FailoverAfter: 2}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	in := media(t, s).ingest
	ctx := context.Background()
	require.False(t, in.result(in.poll(ctx)))
	before := listed(t, s)

	srvA.Close() // the first origin dies
	assert.True(t, in.result(in.poll(ctx)))
	assert.Equal(t, 0, in.current, "one failure is not enough")
	assert.True(t, in.result(in.poll(ctx)))
	assert.Equal(t, 1, in.current, "second failure: failover")
	require.False(t, in.result(in.poll(ctx)))

	after := listed(t, s)
	assert.Greater(t, after.MediaSequence, before.MediaSequence)
	assert.True(t, after.Segments[0].Discontinuity, "the new origin starts a discontinuity")
	assert.Equal(t, string(b.body(7)), string(s.Segment("tv", "", after.Segments[0].Name).Data))
}

// TestRestartContinuesTimeline: a gateway restarted on the same registry numbers on from
// where the last one stopped, with a discontinuity and the same target duration.
func TestRestartContinuesTimeline(t *testing.T) {
	o := &fakeOrigin{}
	o.set(0, 5, 0)
	origin := httptest.NewServer(o)
	defer origin.Close()
	reg := swarm.NewMemory(swarm.Options{})
	cfg := Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}}, WindowSegments: 5}
	first, err := New(cfg, reg)
	require.NoError(t, err)
	require.NoError(t, media(t, first).ingest.poll(context.Background()))
	before := listed(t, first)
	require.Len(t, before.Segments, 5)

	o.set(0, 2, 1) // the origin restarted too, with shorter numbering
	second, err := New(cfg, reg)
	require.NoError(t, err)
	second.restoreTimeline(context.Background(), "tv", media(t, second))
	require.NoError(t, media(t, second).ingest.poll(context.Background()))
	after := listed(t, second)
	require.NotEmpty(t, after.Segments)
	assert.Equal(t, before.Segments[4].Seq+1, after.MediaSequence, "numbering continues")
	assert.True(t, after.Segments[0].Discontinuity)
	assert.Equal(t, before.TargetDuration, after.TargetDuration)
	assert.GreaterOrEqual(t, after.DiscontinuitySequence, before.DiscontinuitySequence)
}

// TestEndedPlaylists: a VOD playlist is listed whole at once, fetching nothing; a live one
// that ends keeps its window and gains EXT-X-ENDLIST; either way polling stops.
func TestEndedPlaylists(t *testing.T) {
	o := &fakeOrigin{ended: true}
	o.set(0, 10, 0)
	s, _ := newTestServer(t, o) // window of 5 segments
	require.NoError(t, media(t, s).ingest.Run(context.Background()), "Run returns once the playlist ended")
	w := listed(t, s)
	assert.Len(t, w.Segments, 10, "VOD: every segment listed")
	assert.Equal(t, 2, w.TargetDuration, "the origin's target duration, as for live")
	assert.True(t, w.Ended)
	assert.Equal(t, "VOD", w.PlaylistType)
	for i := range 10 {
		assert.Zero(t, o.hitCount(fmt.Sprintf("/s%d.ts", i)), "fetched on demand only")
		assert.Zero(t, w.Segments[i].Size, "no digest before the gateway holds it")
	}

	live := &fakeOrigin{}
	live.set(0, 5, 0)
	s, _ = newTestServer(t, live)
	in := media(t, s).ingest
	require.NoError(t, in.poll(context.Background()))
	live.mu.Lock()
	live.n, live.ended = 6, true
	live.mu.Unlock()
	require.NoError(t, in.poll(context.Background()))
	w = listed(t, s)
	assert.True(t, w.Ended)
	assert.Len(t, w.Segments, 5, "an ended live stream keeps its window")
	assert.Equal(t, uint64(5), w.Segments[4].Seq)
}

func TestEventPlaylistGrows(t *testing.T) {
	o := &fakeOrigin{event: true}
	o.set(0, 4, 0)
	s, _ := newTestServer(t, o) // window of 5 segments
	in := media(t, s).ingest
	require.NoError(t, in.poll(context.Background()))
	o.set(0, 7, 0)
	require.NoError(t, in.poll(context.Background()))
	w := listed(t, s)
	assert.Equal(t, "EVENT", w.PlaylistType)
	assert.Equal(t, uint64(0), w.MediaSequence, "nothing removed from an event playlist")
	assert.Len(t, w.Segments, 7)
}

// TestOneOriginFetchPerSegmentUnderLoad: 100 players polling the playlist and fetching
// every segment while the origin advances cost the origin exactly one fetch per segment.
func TestOneOriginFetchPerSegmentUnderLoad(t *testing.T) {
	o := &fakeOrigin{}
	o.set(0, 3, 0)
	s, front := newTestServer(t, o)
	in := media(t, s).ingest
	require.NoError(t, in.poll(context.Background()))
	stop := make(chan struct{})
	var players sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	var served atomic.Int64
	for range 100 {
		players.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				w, err := fetchPlaylist(client, front.URL)
				if err != nil {
					continue
				}
				for _, seg := range w.Segments {
					if resp, err := client.Get(front.URL + "/live/tv/" + seg.Name); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						served.Add(1)
					}
				}
			}
		})
	}
	for first := 1; first <= 5; first++ {
		o.set(first, 3, 0)
		require.NoError(t, in.poll(context.Background()))
	}
	close(stop)
	players.Wait()
	for seq := 0; seq <= 7; seq++ {
		assert.Equal(t, 1, o.hitCount(fmt.Sprintf("/s%d.ts", seq)), "segment %d", seq)
	}
	t.Logf("%d segment responses to 100 players, 1 origin fetch per segment", served.Load())
	assert.Positive(t, served.Load())
}

func fetchPlaylist(client *http.Client, base string) (*playlist.Window, error) {
	resp, err := client.Get(base + "/live/tv/index.m3u8?" + swarm.PeerPlaylistQuery)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return playlist.ParseGateway(b)
}

// TestVODOnDemand: 100 concurrent requests for a segment the gateway does not hold yet make
// exactly one origin fetch; the proxies' playlist then gives its digest; the bytes held stay
// under the memory bound (least recently used out first) and come back on demand.
func TestVODOnDemand(t *testing.T) {
	o := &fakeOrigin{ended: true}
	o.set(0, 10, 0)
	origin := httptest.NewServer(o)
	defer origin.Close()
	s, err := New(Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}},
		MaxSegmentBytes: 1000, MaxChannelBytes: 3000}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	require.NoError(t, media(t, s).ingest.poll(context.Background()))
	front := httptest.NewServer(s.Handler())
	defer front.Close()
	segs := listed(t, s).Segments

	var wg sync.WaitGroup
	codes := make([]int, 100)
	for i := range codes {
		wg.Go(func() {
			resp, err := http.Get(front.URL + "/live/tv/" + segs[3].Name)
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for _, c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	assert.Equal(t, 1, o.hitCount("/s3.ts"), "one origin fetch for 100 requests")
	after := listed(t, s).Segments
	assert.Equal(t, playlist.Sum(o.body(3)), after[3].Digest, "the proxies' playlist now gives the digest")
	assert.Zero(t, after[4].Size)

	for i := range 5 { // 5 × 1000 bytes through a 3000-byte bound
		resp, body := get(t, front.URL+"/live/tv/"+segs[i].Name)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, string(o.body(i)), body)
	}
	get(t, front.URL+"/live/tv/"+segs[0].Name)
	assert.Equal(t, 2, o.hitCount("/s0.ts"), "evicted, then fetched again on demand")
	assert.Equal(t, 1, o.hitCount("/s4.ts"))
}

// TestStalledClientFreesItsHandler: a client that asks for a segment larger than the
// socket buffers and never reads does not hold the gateway's handler past WriteTimeout
// (plus the segment's time at MinWriteRate); the connection is then closed.
func TestStalledClientFreesItsHandler(t *testing.T) {
	s, name := serverWith(t, Config{WriteTimeout: 300 * time.Millisecond, MinWriteRate: 1 << 40}, 16<<20)
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Handler().ServeHTTP(w, r)
		returned <- struct{}{}
	}))
	defer srv.Close()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /live/tv/%s HTTP/1.1\r\nHost: gw\r\n\r\n", name)
	require.NoError(t, err)
	select { // never reading: 16 MB cannot all sit in the kernel's buffers
	case <-returned:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler is still writing to a client that does not read")
	}
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	n, err := io.Copy(io.Discard, conn)
	assert.NoError(t, err, "the gateway closes the connection")
	assert.Less(t, n, int64(16<<20), "the response was cut")
}

// TestSetChannels: channels are added, kept, changed and removed while the gateway runs;
// a kept channel keeps its window, a removed one answers 404, a bad set changes nothing.
func TestSetChannels(t *testing.T) {
	a, b := &fakeOrigin{}, &fakeOrigin{}
	a.set(0, 3, 0)
	b.set(100, 3, 0)
	oa, ob := httptest.NewServer(a), httptest.NewServer(b)
	defer oa.Close()
	defer ob.Close()
	s, err := New(Config{Channels: []ChannelConfig{{Name: "a", Sources: []string{oa.URL + "/live.m3u8"}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	front := httptest.NewServer(s.Handler())
	defer front.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); assert.NoError(t, <-done) }()
	serving := func(name string) bool { // the channel's playlist lists segments, within 10 s
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if resp, body := get(t, front.URL+"/live/"+name+"/index.m3u8"); resp.StatusCode == http.StatusOK && strings.Contains(body, ".ts") {
				return true
			}
		}
		return false
	}
	require.True(t, serving("a"))
	kept := s.channelMap()["a"]

	added, changed, removed, err := s.SetChannels([]ChannelConfig{
		{Name: "a", Sources: []string{oa.URL + "/live.m3u8"}}, {Name: "b", Sources: []string{ob.URL + "/live.m3u8"}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, added)
	assert.Empty(t, changed)
	assert.Empty(t, removed)
	assert.True(t, serving("b"), "an added channel is ingested")
	assert.Same(t, kept, s.channelMap()["a"], "an unchanged channel goes on as it is")

	_, _, _, err = s.SetChannels([]ChannelConfig{{Name: "bad name!", Sources: []string{oa.URL}}})
	assert.Error(t, err)
	assert.Len(t, s.channelMap(), 2, "a refused set changes nothing")

	added, changed, removed, err = s.SetChannels([]ChannelConfig{{Name: "b", Sources: []string{ob.URL + "/live.m3u8"}, Latency: LatencyLow}})
	require.NoError(t, err)
	assert.Empty(t, added)
	assert.Equal(t, []string{"b"}, changed)
	assert.Equal(t, []string{"a"}, removed)
	resp, _ := get(t, front.URL+"/live/a/index.m3u8")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a removed channel")
	assert.True(t, serving("b"), "a changed channel starts again")
}
