package hlstest

import (
	"fmt"
	"net/http"
	"sync"
)

// FakeLive is a scripted live HLS origin for unit tests: GET /live.m3u8 is a media playlist
// (target duration 2 s) of segments First..First+N-1 named s<seq>.ts, whose bytes are
// "origin <Epoch> segment <seq>" padded to 1000 bytes. Set the exported fields before the
// first request, or with Update while it serves.
type FakeLive struct {
	mu     sync.Mutex // guards the following fields
	First  int
	N      int
	Epoch  int    // bumped to simulate an origin restart with new content
	Ended  bool   // the playlist ends with EXT-X-ENDLIST
	Event  bool   // the playlist is of type EVENT
	Header string // written after EXT-X-VERSION: whole lines, each ending in "\n"
	// Playlist, when set, answers playlist requests instead.
	Playlist http.Handler
	// Polled, when set, gets a send (never blocking) per playlist request.
	Polled chan struct{}
	hits   map[string]int
}

// Set sets the segments listed and the content epoch.
func (o *FakeLive) Set(first, n, epoch int) {
	o.Update(func(o *FakeLive) { o.First, o.N, o.Epoch = first, n, epoch })
}

// Update changes the origin under its lock.
func (o *FakeLive) Update(f func(o *FakeLive)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(o)
}

// Hits returns how many requests path got.
func (o *FakeLive) Hits(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// Body returns the bytes of segment seq in the current epoch.
func (o *FakeLive) Body(seq int) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.body(seq)
}

func (o *FakeLive) body(seq int) []byte {
	b := make([]byte, 1000)
	copy(b, fmt.Sprintf("origin %d segment %d", o.Epoch, seq))
	return b
}

func (o *FakeLive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hits == nil {
		o.hits = map[string]int{}
	}
	o.hits[r.URL.Path]++
	if r.URL.Path == "/live.m3u8" {
		select {
		case o.Polled <- struct{}{}:
		default:
		}
		if o.Playlist != nil {
			o.Playlist.ServeHTTP(w, r)
			return
		}
		fmt.Fprintf(w, "#EXTM3U\n#EXT-X-VERSION:3\n%s#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:%d\n", o.Header, o.First)
		if o.Event {
			fmt.Fprint(w, "#EXT-X-PLAYLIST-TYPE:EVENT\n")
		}
		for i := range o.N {
			fmt.Fprintf(w, "#EXTINF:2.000,\ns%d.ts\n", o.First+i)
		}
		if o.Ended {
			fmt.Fprint(w, "#EXT-X-ENDLIST\n")
		}
		return
	}
	var seq int
	if _, err := fmt.Sscanf(r.URL.Path, "/s%d.ts", &seq); err != nil || seq < o.First || seq >= o.First+o.N {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write(o.body(seq))
}
