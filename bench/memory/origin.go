package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// origin is an in-process live HLS origin. Every channel is described by its URL,
// /o/NAME/SIZE/INTERVAL_MS/index.m3u8: a rolling media playlist (EXT-X-TARGETDURATION 2) of
// the last originListed segments, a new one every INTERVAL_MS, each SIZE bytes. A segment's
// bytes come from a ChaCha8 stream seeded with the channel's name, its size and its sequence
// number: distinct per channel and sequence, the same on every request. The gateway treats
// segments as opaque bytes (gateway/ingest.go keeps the URI's extension, .ts here), so no
// MPEG-TS is needed.
type origin struct {
	epoch time.Time // sequence 0 started then
	ln    net.Listener
	srv   *http.Server
	base  string
}

// originListed is how many segments the origin's playlist lists (and serves, with slack).
const originListed = 10

func newOrigin(ctx context.Context) (*origin, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Started in the past, so that every channel has a full playlist from the first poll.
	o := &origin{epoch: time.Now().Add(-time.Minute), ln: ln, base: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /o/{name}/{size}/{ms}/{file}", o.serve)
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 60 * time.Second}
	go func() { _ = o.srv.Serve(ln) }()
	return o, nil
}

func (o *origin) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
}

// url returns the playlist URL of a channel.
func (o *origin) url(name string, size int, interval time.Duration) string {
	return fmt.Sprintf("%s/o/%s/%d/%d/index.m3u8", o.base, name, size, interval.Milliseconds())
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	size, err1 := strconv.Atoi(r.PathValue("size"))
	ms, err2 := strconv.Atoi(r.PathValue("ms"))
	if err1 != nil || err2 != nil || size <= 0 || size > 64<<20 || ms <= 0 {
		http.Error(w, "bad channel", http.StatusNotFound)
		return
	}
	interval := time.Duration(ms) * time.Millisecond
	current := int64(time.Since(o.epoch) / interval) // being produced: not listed yet
	file := r.PathValue("file")
	if file == "index.m3u8" {
		first := max(0, current-originListed)
		var b strings.Builder
		fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:%d\n", first)
		for seq := first; seq < current; seq++ {
			fmt.Fprintf(&b, "#EXTINF:%.3f,\n%d.ts\n", interval.Seconds(), seq)
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(b.String()))
		return
	}
	seq, err := strconv.ParseInt(strings.TrimSuffix(file, ".ts"), 10, 64)
	if err != nil || !strings.HasSuffix(file, ".ts") || seq >= current || seq < current-2*originListed {
		http.Error(w, "no such segment", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "video/mp2t")
	w.Header().Set("Content-Length", strconv.Itoa(size))
	_, _ = w.Write(segmentBytes(name, size, seq))
}

// segmentBytes returns the bytes of a channel's segment.
func segmentBytes(name string, size int, seq int64) []byte {
	var seed [32]byte
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	binary.LittleEndian.PutUint64(seed[0:], h.Sum64())
	binary.LittleEndian.PutUint64(seed[8:], uint64(size))
	binary.LittleEndian.PutUint64(seed[16:], uint64(seq))
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}
