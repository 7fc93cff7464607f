package simplayer

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRealHTTP plays a short VOD from a real server on 127.0.0.1: a redirect to the media
// playlist (whose URIs then resolve against where it was served from), an fMP4 init
// section and three byte-range segments of one file, served with 206.
func TestRealHTTP(t *testing.T) {
	initData := bytes.Repeat([]byte{'i'}, 100)
	all := make([]byte, 900)
	for i := range all {
		all[i] = byte(i / 300)
	}
	mux := http.NewServeMux()
	mux.Handle("/start.m3u8", http.RedirectHandler("/vod/index.m3u8", http.StatusFound))
	mux.HandleFunc("/vod/index.m3u8", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n" +
			"#EXT-X-MAP:URI=\"init.mp4\"\n" +
			"#EXTINF:0.200,\n#EXT-X-BYTERANGE:300@0\nall.mp4\n" +
			"#EXTINF:0.200,\n#EXT-X-BYTERANGE:300\nall.mp4\n" +
			"#EXTINF:0.200,\n#EXT-X-BYTERANGE:300\nall.mp4\n#EXT-X-ENDLIST\n"))
	})
	var inits atomic.Int32
	mux.HandleFunc("/vod/init.mp4", func(w http.ResponseWriter, r *http.Request) {
		inits.Add(1)
		http.ServeContent(w, r, "init.mp4", time.Time{}, bytes.NewReader(initData))
	})
	mux.HandleFunc("/vod/all.mp4", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") == "" {
			http.Error(w, "want a Range", http.StatusBadRequest)
			return
		}
		http.ServeContent(w, r, "all.mp4", time.Time{}, bytes.NewReader(all))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var uris []string
	var got [][]byte
	p := New(Config{URL: srv.URL + "/start.m3u8", OnSegment: func(uri string, data []byte) {
		uris = append(uris, uri)
		got = append(got, data)
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run did not return before the 10 s deadline")
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("Run returned after %v, before the 0.6 s of media could play", d)
	}
	r := p.Result()
	if !r.Ended || r.Segments != 3 || r.Bytes != 1000 || r.Errors != 0 || r.Dropped != 0 {
		t.Errorf("got %+v; want Ended, 3 segments, 1000 bytes (init section included), no error", r)
	}
	if n := inits.Load(); n != 1 {
		t.Errorf("init section fetched %d times, want once", n)
	}
	wantURIs := []string{srv.URL + "/vod/all.mp4", srv.URL + "/vod/all.mp4", srv.URL + "/vod/all.mp4"}
	if strings.Join(uris, " ") != strings.Join(wantURIs, " ") {
		t.Fatalf("OnSegment URIs %v, want %v", uris, wantURIs)
	}
	for i, want := range [][]byte{all[:300], all[300:600], all[600:]} {
		if !bytes.Equal(got[i], want) {
			t.Errorf("OnSegment %d: %d bytes differing from the served ones", i, len(got[i]))
		}
	}
}
