package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// TestIFramePlaylistMirrored: a multivariant origin with an I-frame playlist (byte ranges
// into the main segments) is mirrored whole; the I-frame rendition keeps
// EXT-X-I-FRAMES-ONLY and serves each range's bytes.
func TestIFramePlaylistMirrored(t *testing.T) {
	seg := []byte(strings.Repeat("0123456789", 100)) // one 1000-byte segment
	mux := http.NewServeMux()
	mux.HandleFunc("/master.m3u8", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nmain.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=10000,URI=\"iframes.m3u8\"\n")
	})
	mux.HandleFunc("/main.m3u8", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\nseg0.ts\n")
	})
	mux.HandleFunc("/iframes.m3u8", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-I-FRAMES-ONLY\n"+
			"#EXTINF:1.000,\n#EXT-X-BYTERANGE:188@0\nseg0.ts\n#EXTINF:1.000,\n#EXT-X-BYTERANGE:376@500\nseg0.ts\n")
	})
	mux.HandleFunc("/seg0.ts", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "seg0.ts", time.Time{}, strings.NewReader(string(seg)))
	})
	origin := httptest.NewServer(mux)
	defer origin.Close()
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/master.m3u8"}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	ch := s.channelMap()["tv"]
	require.NoError(t, s.discover(context.Background(), ch))
	assert.Contains(t, string(ch.multivariantPlaylist()), `#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=10000,URI="r1/index.m3u8"`)
	r, err := ch.rendition("r1")
	require.NoError(t, err)
	require.NoError(t, r.ingest.(*ingest.HLS).Poll(t.Context()))
	body, _ := r.win.playlist(playlist.ForPlayers)
	assert.Contains(t, string(body), "#EXT-X-I-FRAMES-ONLY")
	assert.Contains(t, string(body), "#EXT-X-VERSION:4")
	w, err := playlist.ParseGateway(proxiesForm(r.win))
	require.NoError(t, err)
	require.Len(t, w.Segments, 2)
	assert.Equal(t, seg[0:188], r.win.segment(w.Segments[0].Name).Data)
	assert.Equal(t, seg[500:876], r.win.segment(w.Segments[1].Name).Data)
}
