package gateway

import (
	"fmt"
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

func TestParseLatencyMode(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  LatencyMode
		wantH int
	}{
		{"", LatencyNormal, 1},
		{"low", LatencyLow, 0},
		{"normal", LatencyNormal, 1},
		{"high", LatencyHigh, 3},
	} {
		got, err := ParseLatencyMode(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		assert.Equal(t, tc.wantH, got.HoldBackSegments(), tc.in)
	}
	for _, bad := range []string{"LOW", "fast", " normal", "3"} {
		got, err := ParseLatencyMode(bad)
		require.Error(t, err, bad)
		assert.Empty(t, got)
		assert.Contains(t, err.Error(), "low, normal or high", bad)
	}
	assert.Equal(t, 1, LatencyMode("").HoldBackSegments(), `"" is normal`)
}

func TestValidateLatency(t *testing.T) {
	cfg := Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://origin/live.m3u8"}, Latency: "fast"}}}
	cfg.setDefaults()
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `channel "tv"`)
	assert.Contains(t, err.Error(), `"fast"`)
	for _, m := range []LatencyMode{"", LatencyLow, LatencyNormal, LatencyHigh} {
		cfg.Channels[0].Latency = m
		assert.NoError(t, cfg.Validate(), m)
	}
}

// newLatencyServer returns a gateway on the fake origin whose channel "tv" has the given
// latency mode and WindowSegments, not running.
func newLatencyServer(t *testing.T, o *hlstest.FakeLive, mode LatencyMode, window int) (*Server, *httptest.Server) {
	t.Helper()
	origin := httptest.NewServer(o)
	t.Cleanup(origin.Close)
	s, err := New(Config{PeerAddrs: swarm.AddrLoopback, Channels: []ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/live.m3u8"}, Latency: mode}},
		WindowSegments: window}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	front := httptest.NewServer(s.Handler())
	t.Cleanup(front.Close)
	return s, front
}

// servedForms returns the channel's media playlist as players and proxies get it.
func servedForms(t *testing.T, front *httptest.Server) (players, proxies string) {
	t.Helper()
	resp, players := get(t, front.URL+"/live/tv/index.m3u8")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, proxies = get(t, front.URL+"/live/tv/index.m3u8?"+swarm.PeerPlaylistQuery)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return players, proxies
}

// originHeader is an origin's own say on where to start, which the gateway replaces.
const originHeader = "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-START:TIME-OFFSET=-30,PRECISE=YES\n" +
	"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=1\n"

// TestLatencyModes: a live channel's playlists, in both forms, start players (3+H) target
// durations behind live, in place of the origin's EXT-X-START, and list at least H+4
// segments, where H is the segments its mode makes proxies hide.
func TestLatencyModes(t *testing.T) {
	for _, tc := range []struct {
		mode     LatencyMode
		window   int    // WindowSegments
		wantHold string // seconds, with a target duration of 2
		wantLen  int
	}{
		{"", 3, "8", 5},
		{LatencyLow, 3, "6", 4},
		{LatencyLow, 6, "6", 6},
		{LatencyNormal, 3, "8", 5},
		{LatencyNormal, 6, "8", 6},
		{LatencyHigh, 3, "12", 7},
		{LatencyHigh, 6, "12", 7},
		{LatencyHigh, 9, "12", 9},
	} {
		t.Run(fmt.Sprintf("%s/window%d", tc.mode, tc.window), func(t *testing.T) {
			o := &hlstest.FakeLive{Header: originHeader}
			o.Set(100, 12, 0)
			s, front := newLatencyServer(t, o, tc.mode, tc.window)
			require.NoError(t, poll(t, s))
			players, proxies := servedForms(t, front)

			for form, body := range map[string]string{"players": players, "proxies": proxies} {
				assert.Contains(t, body, "\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SERVER-CONTROL:HOLD-BACK="+tc.wantHold+
					"\n#EXT-X-START:TIME-OFFSET=-"+tc.wantHold+"\n", form)
				assert.Equal(t, 1, strings.Count(body, "#EXT-X-START:"), "%s: the origin's EXT-X-START is replaced", form)
				assert.Equal(t, 1, strings.Count(body, "#EXT-X-SERVER-CONTROL:"), "%s: the origin's EXT-X-SERVER-CONTROL is replaced", form)
				assert.NotContains(t, body, "CAN-BLOCK-RELOAD", form)
			}
			w, err := playlist.ParseGateway([]byte(proxies))
			require.NoError(t, err)
			assert.Len(t, w.Segments, tc.wantLen)
			hold, ok := playlist.HoldBack(w.Header)
			require.True(t, ok, "proxies read the hold-back")
			mode, _ := ParseLatencyMode(string(tc.mode))
			assert.Equal(t, time.Duration(3+mode.HoldBackSegments())*2*time.Second, hold)
			m, err := playlist.ParseOrigin([]byte(players))
			require.NoError(t, err)
			assert.Len(t, m.Segments, tc.wantLen)

			a, _ := media(t, s).win.playlist(playlist.ForPlayers)
			b, _ := media(t, s).win.playlist(playlist.ForPlayers)
			assert.Same(t, &a[0], &b[0], "rendered once per change, not per request")
		})
	}
}

// TestLatencyEndedPlaylists: players play an ended playlist from its start, so neither a
// live stream that ended nor a VOD one carries a hold-back or EXT-X-START, the origin's
// included.
func TestLatencyEndedPlaylists(t *testing.T) {
	live := &hlstest.FakeLive{Header: originHeader}
	live.Set(0, 5, 0)
	s, front := newLatencyServer(t, live, LatencyHigh, 3)
	require.NoError(t, poll(t, s))
	players, _ := servedForms(t, front)
	require.Contains(t, players, "#EXT-X-SERVER-CONTROL:HOLD-BACK=12\n", "live until now")
	live.Update(func(o *hlstest.FakeLive) { o.N, o.Ended = 6, true })
	require.NoError(t, poll(t, s))

	vod := &hlstest.FakeLive{Header: originHeader, Ended: true}
	vod.Set(0, 10, 0)
	v, vodFront := newLatencyServer(t, vod, LatencyHigh, 3)
	require.NoError(t, poll(t, v))
	resp, _ := get(t, vodFront.URL+"/live/tv/"+listed(t, v).Segments[0].Name) // renders the proxies' form again
	require.Equal(t, http.StatusOK, resp.StatusCode)

	for name, front := range map[string]*httptest.Server{"ended live": front, "vod": vodFront} {
		players, proxies := servedForms(t, front)
		for form, body := range map[string]string{"players": players, "proxies": proxies} {
			assert.Contains(t, body, "#EXT-X-ENDLIST", "%s %s", name, form)
			assert.Contains(t, body, "#EXT-X-INDEPENDENT-SEGMENTS", "%s %s", name, form)
			assert.NotContains(t, body, "#EXT-X-SERVER-CONTROL", "%s %s", name, form)
			assert.NotContains(t, body, "#EXT-X-START", "%s %s", name, form)
		}
	}
}
