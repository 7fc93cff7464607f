package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// TestKeysProxiedAndIVWrittenOut: an AES-128 origin that leaves the IV implicit (it is
// then the origin's media sequence number, RFC 8216 §5.2) gets it written out, because the
// gateway renumbers; the key is fetched once, served by the gateway, never cached by shared
// caches and not counted as egress.
func TestKeysProxiedAndIVWrittenOut(t *testing.T) {
	key := []byte("0123456789abcdef")
	var keyHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/live.m3u8", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n"+
			"#EXTINF:2.000,\na.ts\n#EXTINF:2.000,\nb.ts\n")
	})
	mux.HandleFunc("/k.key", func(w http.ResponseWriter, r *http.Request) { keyHits.Add(1); _, _ = w.Write(key) })
	mux.HandleFunc("/a.ts", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("segment a")) })
	mux.HandleFunc("/b.ts", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("segment b")) })
	origin := httptest.NewServer(mux)
	defer origin.Close()
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	require.NoError(t, poll(t, s))
	w := listed(t, s)
	require.Len(t, w.Segments, 2)
	for i, seg := range w.Segments {
		require.NotNil(t, seg.Key)
		assert.Equal(t, "AES-128", seg.Key.Method)
		assert.Equal(t, fmt.Sprintf("0x%032x", 41+i), seg.Key.IV, "the origin's sequence number, written out")
	}
	assert.Equal(t, int32(1), keyHits.Load(), "one key fetch")

	front := httptest.NewServer(s.Handler())
	defer front.Close()
	body, _ := media(t, s).win.playlist(playlist.ForPlayers)
	assert.Contains(t, string(body), `URI="`+w.Segments[0].Key.URI+`"`)
	resp, got := get(t, front.URL+"/live/tv/"+w.Segments[0].Key.URI)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(key), got)
	assert.Equal(t, "private, no-store", resp.Header.Get("Cache-Control"))
	assert.Zero(t, s.channelMap()["tv"].egress.Load(), "keys are not media egress")
}
