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

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// newTestServer returns a gateway on the fake origin with an in-memory registry, not running.
// Its window is of 5 segments, the fewest the default latency mode allows.
func newTestServer(t *testing.T, o *hlstest.FakeLive) (*Server, *httptest.Server) {
	t.Helper()
	origin := httptest.NewServer(o)
	t.Cleanup(origin.Close)
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}}, WindowSegments: 5},
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

// poll polls the test channel's origin once.
func poll(t *testing.T, s *Server) error {
	t.Helper()
	return media(t, s).ingest.(*ingest.HLS).Poll(t.Context())
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
	o := &hlstest.FakeLive{}
	o.Set(100, 7, 0)
	s, _ := newTestServer(t, o)

	require.NoError(t, poll(t, s))
	w := listed(t, s)
	require.Len(t, w.Segments, 5, "first poll takes the newest window's worth")
	assert.Equal(t, uint64(0), w.MediaSequence)

	require.NoError(t, poll(t, s)) // nothing new
	o.Set(101, 7, 0)               // one new segment
	require.NoError(t, poll(t, s))
	w = listed(t, s)
	assert.Equal(t, uint64(1), w.MediaSequence)
	for seq := 102; seq <= 107; seq++ {
		assert.Equal(t, 1, o.Hits(fmt.Sprintf("/s%d.ts", seq)), "segment %d fetched once", seq)
	}

	// The origin restarts and numbers from 0 again: the gateway's sequence keeps rising
	// and the new content starts with a discontinuity.
	o.Set(0, 2, 1)
	require.NoError(t, poll(t, s))
	w = listed(t, s)
	assert.Equal(t, uint64(3), w.MediaSequence)
	require.Len(t, w.Segments, 5)
	assert.True(t, w.Segments[3].Discontinuity, "restart starts a discontinuity")
	assert.Equal(t, uint64(7), w.Segments[4].Seq)
}

func TestIngestBadOriginKeepsWindow(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, _ := newTestServer(t, o)
	require.NoError(t, poll(t, s))
	o.Update(func(o *hlstest.FakeLive) { o.Playlist = http.NotFoundHandler() })
	assert.Error(t, poll(t, s), "404 playlist")
	assert.Len(t, listed(t, s).Segments, 3, "previous window kept")
}

func TestServePlaylistsAndSegments(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, front := newTestServer(t, o)
	require.NoError(t, poll(t, s))
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
	assert.Equal(t, string(o.Body(0)), body)
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
	// echo's own errors are shared values: answering one leaves it as it was (it once got
	// itself as its Internal, a cycle that Error() followed until the stack overflowed).
	assert.Nil(t, echo.ErrNotFound.Internal)
	assert.NotPanics(t, func() { _ = echo.ErrNotFound.Error() })
}

func TestReadyz(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, front := newTestServer(t, o)
	resp, _ := get(t, front.URL+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "nothing ingested yet")
	require.NoError(t, poll(t, s))
	resp, _ = get(t, front.URL+"/readyz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	s.cfg.Now = func() time.Time { return time.Now().Add(time.Minute) }
	resp, body := get(t, front.URL+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.True(t, strings.Contains(body, "tv"))
}

func TestRunStopsWithContext(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	o.Polled = make(chan struct{}, 1)
	s, _ := newTestServer(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	<-o.Polled // ingest is under way
	cancel()
	assert.NoError(t, <-done)
}

func TestIngestGapIsDiscontinuity(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(10, 3, 0)
	s, _ := newTestServer(t, o)
	require.NoError(t, poll(t, s))
	o.Set(11, 3, 0) // 13: contiguous
	require.NoError(t, poll(t, s))
	o.Set(20, 3, 0) // 20-22: the origin moved on while we were away
	require.NoError(t, poll(t, s))
	w := listed(t, s)
	require.Len(t, w.Segments, 5)
	assert.True(t, w.Segments[2].Discontinuity, "a gap in the origin's numbering")
	assert.False(t, w.Segments[3].Discontinuity)
	assert.Equal(t, uint64(6), w.Segments[4].Seq, "our numbering stays contiguous")
}

func TestCORSAndGzip(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, front := newTestServer(t, o)
	require.NoError(t, poll(t, s))
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

// TestEndedPlaylists: a VOD playlist is listed whole at once, fetching nothing; a live one
// that ends keeps its window and gains EXT-X-ENDLIST; either way polling stops.
func TestEndedPlaylists(t *testing.T) {
	o := &hlstest.FakeLive{Ended: true}
	o.Set(0, 10, 0)
	s, _ := newTestServer(t, o) // window of 5 segments
	require.NoError(t, media(t, s).ingest.Run(context.Background()), "Run returns once the playlist ended")
	w := listed(t, s)
	assert.Len(t, w.Segments, 10, "VOD: every segment listed")
	assert.Equal(t, 2, w.TargetDuration, "the origin's target duration, as for live")
	assert.True(t, w.Ended)
	assert.Equal(t, "VOD", w.PlaylistType)
	for i := range 10 {
		assert.Zero(t, o.Hits(fmt.Sprintf("/s%d.ts", i)), "fetched on demand only")
		assert.Zero(t, w.Segments[i].Size, "no digest before the gateway holds it")
	}

	live := &hlstest.FakeLive{}
	live.Set(0, 5, 0)
	s, _ = newTestServer(t, live)
	require.NoError(t, poll(t, s))
	live.Update(func(o *hlstest.FakeLive) { o.N, o.Ended = 6, true })
	require.NoError(t, poll(t, s))
	w = listed(t, s)
	assert.True(t, w.Ended)
	assert.Len(t, w.Segments, 5, "an ended live stream keeps its window")
	assert.Equal(t, uint64(5), w.Segments[4].Seq)
}

func TestEventPlaylistGrows(t *testing.T) {
	o := &hlstest.FakeLive{Event: true}
	o.Set(0, 4, 0)
	s, _ := newTestServer(t, o) // window of 5 segments
	require.NoError(t, poll(t, s))
	o.Set(0, 7, 0)
	require.NoError(t, poll(t, s))
	w := listed(t, s)
	assert.Equal(t, "EVENT", w.PlaylistType)
	assert.Equal(t, uint64(0), w.MediaSequence, "nothing removed from an event playlist")
	assert.Len(t, w.Segments, 7)
}

// TestOneOriginFetchPerSegmentUnderLoad: 100 players polling the playlist and fetching
// every segment while the origin advances cost the origin exactly one fetch per segment.
func TestOneOriginFetchPerSegmentUnderLoad(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	s, front := newTestServer(t, o)
	require.NoError(t, poll(t, s))
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
		o.Set(first, 3, 0)
		require.NoError(t, poll(t, s))
	}
	close(stop)
	players.Wait()
	for seq := 0; seq <= 7; seq++ {
		assert.Equal(t, 1, o.Hits(fmt.Sprintf("/s%d.ts", seq)), "segment %d", seq)
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
	o := &hlstest.FakeLive{Ended: true}
	o.Set(0, 10, 0)
	origin := httptest.NewServer(o)
	defer origin.Close()
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}},
		MaxSegmentBytes: 1000, MaxChannelBytes: 3000}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	require.NoError(t, poll(t, s))
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
	assert.Equal(t, 1, o.Hits("/s3.ts"), "one origin fetch for 100 requests")
	after := listed(t, s).Segments
	assert.Equal(t, playlist.Sum(o.Body(3)), after[3].Digest, "the proxies' playlist now gives the digest")
	assert.Zero(t, after[4].Size)

	for i := range 5 { // 5 × 1000 bytes through a 3000-byte bound
		resp, body := get(t, front.URL+"/live/tv/"+segs[i].Name)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, string(o.Body(i)), body)
	}
	get(t, front.URL+"/live/tv/"+segs[0].Name)
	assert.Equal(t, 2, o.Hits("/s0.ts"), "evicted, then fetched again on demand")
	assert.Equal(t, 1, o.Hits("/s4.ts"))
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
	a, b := &hlstest.FakeLive{}, &hlstest.FakeLive{}
	a.Set(0, 3, 0)
	b.Set(100, 3, 0)
	oa, ob := httptest.NewServer(a), httptest.NewServer(b)
	defer oa.Close()
	defer ob.Close()
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "a", Sources: []string{oa.URL + "/live.m3u8"}}}}, swarm.NewMemory(swarm.Options{}))
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
