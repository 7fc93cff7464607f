package gateway

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/playlist"
)

// Hot paths of the gateway, each beside a baseline measured in the same run: the ratio is
// the overhead the gateway adds (echo routing, lookup, headers, egress counting).
//
//	go test -run '^$' -bench . -benchmem ./gateway/ | tee new.txt   (benchstat-friendly)

// benchServer returns a gateway (no registry: nothing here reaches it) with one listed
// segment of size bytes, and the segment's name.
func benchServer(b testing.TB, size int) (*Server, string) {
	return serverWith(b, Config{}, size)
}

// serverWith is benchServer with cfg (its channels are set here).
func serverWith(b testing.TB, cfg Config, size int) (*Server, string) {
	b.Helper()
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	origin := httptest.NewServer(o)
	b.Cleanup(origin.Close)
	cfg.Channels = []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}}
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ch := s.channelMap()["tv"]
	if err := s.discover(context.Background(), ch); err != nil {
		b.Fatal(err)
	}
	r, _ := ch.rendition("")
	r.win.SetPlaylist(ingest.PlaylistInfo{TargetDuration: 2})
	seg := numbered(0, false, 0, bytes.Repeat([]byte{7}, size))
	if err := r.win.Publish(time.Now(), seg); err != nil {
		b.Fatal(err)
	}
	return s, seg.Name
}

func BenchmarkServeSegment(b *testing.B) {
	for _, size := range []int{200 << 10, 1 << 20} {
		s, name := benchServer(b, size)
		r, _ := s.channelMap()["tv"].rendition("")
		data := r.win.segment(name).Data
		req := httptest.NewRequest(http.MethodGet, "/live/tv/"+name, nil)
		b.Run(sizeName(size)+"/baseline", func(b *testing.B) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
			})
			b.SetBytes(int64(size))
			for b.Loop() {
				h.ServeHTTP(newDiscard(), req)
			}
		})
		b.Run(sizeName(size)+"/gateway", func(b *testing.B) {
			h := s.Handler()
			b.SetBytes(int64(size))
			for b.Loop() {
				h.ServeHTTP(newDiscard(), req)
			}
		})
	}
}

func BenchmarkServePlaylist(b *testing.B) {
	s, _ := benchServer(b, 1000)
	r, _ := s.channelMap()["tv"].rendition("")
	body, _ := r.win.playlist(playlist.ForPlayers)
	req := httptest.NewRequest(http.MethodGet, "/live/tv/index.m3u8", nil)
	b.Run("baseline", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			w.Header().Set("Cache-Control", "public, max-age=1")
			_, _ = w.Write(body)
		})
		for b.Loop() {
			h.ServeHTTP(newDiscard(), req)
		}
	})
	b.Run("gateway", func(b *testing.B) {
		h := s.Handler()
		for b.Loop() {
			h.ServeHTTP(newDiscard(), req)
		}
	})
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "1MB"
	}
	return "200KB"
}

// discard is a ResponseWriter that keeps nothing; each request gets its own (as on a real
// connection, where the header map is one per response).
type discard struct{ h http.Header }

func newDiscard() *discard                     { return &discard{h: http.Header{}} }
func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
