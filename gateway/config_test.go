package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/swarm"
)

// TestWindowRefused: a negative window is an error, not the default.
func TestWindowRefused(t *testing.T) {
	for _, n := range []int{-5, 1, 2} {
		_, err := New(Config{WindowSegments: n, Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/x.m3u8"}}}},
			swarm.NewMemory(swarm.Options{}))
		require.ErrorContains(t, err, "want at least 3", n)
	}
}

// TestPlayerOriginsChecked: a player origin that is not scheme://host[:port] is refused at
// start, with the value in the message.
func TestPlayerOriginsChecked(t *testing.T) {
	chans := []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/x.m3u8"}}}
	for _, o := range []string{"*", "player.example", "https://player.example/page", "ftp://player.example"} {
		_, err := New(Config{PlayerOrigins: []string{o}, Channels: chans}, swarm.NewMemory(swarm.Options{}))
		require.ErrorContains(t, err, "player origin \""+o+"\"", o)
	}
	s, err := New(Config{PlayerOrigins: []string{"https://player.example", "http://127.0.0.1:3000"}, Channels: chans}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	require.NotNil(t, s)
}

// TestChannelBytesBoundWholeChannel: --max-channel-bytes bounds a multivariant channel as a
// whole, split evenly across its renditions, not each rendition.
func TestChannelBytesBoundWholeChannel(t *testing.T) {
	o := &hlstest.FakeLive{} // 1000-byte segments
	o.Set(0, 6, 0)
	mux := http.NewServeMux()
	mux.HandleFunc("/master.m3u8", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "#EXTM3U\n")
		for i := range 4 {
			fmt.Fprintf(w, "#EXT-X-STREAM-INF:BANDWIDTH=%d\nlive.m3u8?r=%d\n", 100000*(i+1), i)
		}
	})
	mux.Handle("/", o)
	origin := httptest.NewServer(mux)
	defer origin.Close()
	const limit = 4000
	s, err := New(Config{MaxChannelBytes: limit, MaxSegmentBytes: 1000, WindowSegments: 5,
		Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/master.m3u8"}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	ch := s.channelMap()["tv"]
	require.NoError(t, s.discover(t.Context(), ch))
	var held int64
	for _, r := range ch.list() {
		require.NoError(t, r.ingest.(*ingest.HLS).Poll(t.Context()))
		_, b := r.win.held()
		held += b
	}
	require.Len(t, ch.list(), 4)
	assert.LessOrEqual(t, held, int64(limit))
}
