package simplayer

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeOrigin is an HLS origin in memory, an http.RoundTripper on the clock of the synctest
// bubble it is made in. Every path ending in /index.m3u8 is the same media playlist of
// segments seg-<n>.ts (relative); /master.m3u8 lists the variants v0, v1 and v2 after an
// audio rendition. Live: initial segments exist at start and one more every dur; the
// playlist lists the newest window of them.
type fakeOrigin struct {
	start   time.Time
	dur     time.Duration // each segment's, and the target duration (whole seconds)
	window  int           // segments listed by a live playlist
	initial int           // segments that exist at start
	size    int           // bytes per segment
	vod     int           // > 0: an ended playlist of this many segments instead
	query   string        // appended to every segment URI as "?query" when set
	frozen  bool          // live, but no segment after the initial ones (the encoder died)

	// delay, if set, returns how long the request for segment seq takes.
	delay func(seq uint64) time.Duration
	// fail, if set, returns the status to answer the try-th (from 1) request for a path
	// with instead of serving it; 0 serves it.
	fail func(path string, try int) int

	mu    sync.Mutex // guards the following fields
	reqs  []string   // every request URL, in order
	tries map[string]int
}

func newFakeOrigin() *fakeOrigin {
	return &fakeOrigin{start: time.Now(), dur: 2 * time.Second, window: 6, initial: 6, size: 1000}
}

// RoundTrip serves r.
func (o *fakeOrigin) RoundTrip(r *http.Request) (*http.Response, error) {
	o.mu.Lock()
	if o.tries == nil {
		o.tries = map[string]int{}
	}
	o.reqs = append(o.reqs, r.URL.String())
	o.tries[r.URL.Path]++
	try := o.tries[r.URL.Path]
	o.mu.Unlock()
	if o.fail != nil {
		if code := o.fail(r.URL.Path, try); code != 0 {
			return respond(r, code, "failed on purpose")
		}
	}
	path := r.URL.Path
	switch {
	case path == "/master.m3u8":
		return respond(r, http.StatusOK, "#EXTM3U\n"+
			"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/index.m3u8\"\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=300000,AUDIO=\"aud\"\nv0/index.m3u8\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=200000,AUDIO=\"aud\"\nv1/index.m3u8\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=100000,AUDIO=\"aud\"\nv2/index.m3u8\n")
	case strings.HasSuffix(path, "/index.m3u8"):
		return respond(r, http.StatusOK, o.playlist())
	case strings.HasPrefix(path[strings.LastIndex(path, "/")+1:], "seg-"):
		return o.segment(r)
	case strings.HasSuffix(path, ".html"):
		return respond(r, http.StatusOK, "<html><body>not a playlist</body></html>")
	}
	return respond(r, http.StatusNotFound, "not found")
}

// available returns the number of segments that exist now.
func (o *fakeOrigin) available() uint64 {
	switch {
	case o.vod > 0:
		return uint64(o.vod)
	case o.frozen:
		return uint64(o.initial)
	}
	return uint64(o.initial) + uint64(time.Since(o.start)/o.dur)
}

func (o *fakeOrigin) playlist() string {
	n := o.available()
	first := uint64(0)
	if o.vod == 0 && n > uint64(o.window) {
		first = n - uint64(o.window)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", int(o.dur.Seconds()), first)
	for seq := first; seq < n; seq++ {
		fmt.Fprintf(&b, "#EXTINF:%.3f,\nseg-%d.ts", o.dur.Seconds(), seq)
		if o.query != "" {
			b.WriteString("?" + o.query)
		}
		b.WriteString("\n")
	}
	if o.vod > 0 {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String()
}

func (o *fakeOrigin) segment(r *http.Request) (*http.Response, error) {
	name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), ".ts"), 10, 64)
	if err != nil || seq >= o.available() {
		return respond(r, http.StatusNotFound, "no such segment")
	}
	if o.delay != nil {
		t := time.NewTimer(o.delay(seq))
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return respond(r, http.StatusOK, string(segmentBytes(seq, o.size)))
}

// segmentBytes is the body of segment seq.
func segmentBytes(seq uint64, size int) []byte { return bytes.Repeat([]byte{byte(seq)}, size) }

func respond(r *http.Request, code int, body string) (*http.Response, error) {
	return &http.Response{
		StatusCode:    code,
		Status:        fmt.Sprintf("%d %s", code, http.StatusText(code)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

// requests returns the request URLs whose path contains substr, in order.
func (o *fakeOrigin) requests(substr string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, u := range o.reqs {
		if strings.Contains(u, substr) {
			out = append(out, u)
		}
	}
	return out
}

// triesOf returns how many requests asked for path.
func (o *fakeOrigin) triesOf(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tries[path]
}
