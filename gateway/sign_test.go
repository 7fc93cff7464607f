package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

func TestSignedURLs(t *testing.T) {
	o := &hlstest.FakeLive{}
	o.Set(0, 3, 0)
	origin := httptest.NewServer(o)
	defer origin.Close()
	key := []byte("secret")
	now := time.Unix(1_000_000, 0)
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}}},
		SignKey: key, Now: func() time.Time { return now }}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	require.NoError(t, poll(t, s))
	front := httptest.NewServer(s.Handler())
	defer front.Close()
	seg := listed(t, s).Segments[0]

	valid := Token(key, "tv", now.Add(time.Hour))
	cases := []struct {
		name, token string
		want        int
	}{
		{"valid", valid, http.StatusOK},
		{"missing", "", http.StatusForbidden},
		{"expired", Token(key, "tv", now.Add(-time.Second)), http.StatusForbidden},
		{"other channel", Token(key, "radio", now.Add(time.Hour)), http.StatusForbidden},
		{"other key", Token([]byte("guess"), "tv", now.Add(time.Hour)), http.StatusForbidden},
		{"tampered expiry", strings.Replace(valid, "1003600", "1999999", 1), http.StatusForbidden},
		{"garbage", "x-y", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/live/tv/index.m3u8", "/live/tv/" + seg.Name} {
				resp, _ := get(t, front.URL+path+"?token="+tc.token)
				assert.Equal(t, tc.want, resp.StatusCode, path)
				if tc.want != http.StatusOK {
					assert.Equal(t, cacheError, resp.Header.Get("Cache-Control"))
				}
			}
		})
	}

	// The token is carried into every URI of both forms, and the proxies' form still parses.
	_, body := get(t, front.URL+"/live/tv/index.m3u8?token="+valid)
	assert.Contains(t, body, seg.Name+"?token="+valid+"\n")
	_, body = get(t, front.URL+"/live/tv/index.m3u8?"+swarm.PeerPlaylistQuery+"&token="+valid)
	w, err := playlist.ParseGateway([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, seg.Name+"?token="+valid, w.Segments[0].Name)
	assert.Equal(t, seg.Digest, w.Segments[0].Digest, "identity in the swarm is the digest, token or not")
}

func TestWithToken(t *testing.T) {
	in := "#EXTM3U\n#EXTINF:2.000,\na.ts\r\n\n#EXTINF:2.000,\nb.ts"
	assert.Equal(t, "#EXTM3U\n#EXTINF:2.000,\na.ts?token=1-ab\r\n\n#EXTINF:2.000,\nb.ts?token=1-ab", string(withToken([]byte(in), "1-ab")))
	mv := "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"r0/index.m3u8\",DEFAULT=YES\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\nr1/index.m3u8\n"
	assert.Equal(t, "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"r0/index.m3u8?token=1-ab\",DEFAULT=YES\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\nr1/index.m3u8?token=1-ab\n",
		string(withToken([]byte(mv), "1-ab")))
}
