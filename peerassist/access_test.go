package peerassist

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// request sends method to url with headers, and returns the response's status and header.
func request(t *testing.T, method, url string, headers map[string]string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header
}

// TestSignedTokenNotShared: after a player's request with a valid token, a request without
// one (any web page the viewer opens) gets neither the token nor a segment.
func TestSignedTokenNotShared(t *testing.T) {
	gw := newFakeGateway(3)
	gw.token = "4102444800-abcdef"
	seg := gw.window.Segments[0]
	g := startProxyOn(t, gw, nil, "?token="+gw.token)
	resp, body := httpGet(t, g.player.URL+"/live/tv/index.m3u8?token="+gw.token)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, seg.Name+"?token="+gw.token, "the player's own token, in its own playlist")
	resp, _ = httpGet(t, g.player.URL+"/live/tv/"+seg.Name+"?token="+gw.token)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the player plays")
	g.settle(t)

	resp, body = httpGet(t, g.player.URL+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "no token: refused")
	assert.NotContains(t, body, gw.token)
	resp, body = httpGet(t, g.player.URL+"/live/tv/"+seg.Name)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "no token, no segment")
	assert.NotContains(t, body, "segment 0")
	resp, _ = httpGet(t, g.player.URL+"/live/tv/"+seg.Name+"?token=4102444800-forged")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a token the gateway never accepted")
	g.settle(t)
	assert.Equal(t, int64(2), g.Status().TokenRefused)
}

// TestCORSOnlyForAllowedOrigins: CORS and Private Network Access headers go to the origins
// configured, the gateway's own and those the gateway announces; a foreign page gets none.
func TestCORSOnlyForAllowedOrigins(t *testing.T) {
	gw := newFakeGateway(3)
	gw.origins = []string{"https://announced.example"}
	p := startProxy(t, gw, func(c *Config) { c.AllowOrigins = []string{"https://viewer.example"} })
	seg := p.player.URL + "/live/tv/" + gw.window.Segments[0].Name
	preflight := func(origin string) http.Header {
		_, h := request(t, http.MethodOptions, p.player.URL+"/live/tv/index.m3u8", map[string]string{"Origin": origin,
			"Access-Control-Request-Method": "GET", "Access-Control-Request-Private-Network": "true"})
		return h
	}
	for _, origin := range []string{"https://viewer.example", "https://announced.example", p.gatewayOrigin} {
		code, h := request(t, http.MethodGet, seg, map[string]string{"Origin": origin})
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, origin, h.Get("Access-Control-Allow-Origin"), origin)
		pre := preflight(origin)
		assert.Equal(t, origin, pre.Get("Access-Control-Allow-Origin"), origin)
		assert.Equal(t, "true", pre.Get("Access-Control-Allow-Private-Network"), origin)
	}
	for _, origin := range []string{"https://evil.example", "null", "http://viewer.example", "https://viewer.example.evil"} {
		_, h := request(t, http.MethodGet, seg, map[string]string{"Origin": origin})
		assert.Empty(t, h.Get("Access-Control-Allow-Origin"), origin)
		pre := preflight(origin)
		assert.Empty(t, pre.Get("Access-Control-Allow-Origin"), origin)
		assert.Empty(t, pre.Get("Access-Control-Allow-Private-Network"), origin)
	}
	p.settle(t)
}

// TestAddressPolicyRefusesDial: under the gateway's public policy, a plan naming neighbours
// on loopback and link-local (cloud metadata) is never dialled; the player is served from
// the gateway.
func TestAddressPolicyRefusesDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	gw := newFakeGateway(3)
	gw.addrPolicy = "public"
	gw.setSources(swarm.Source{ID: strings.Repeat("1", 32), Addr: ln.Addr().String()},
		swarm.Source{ID: strings.Repeat("2", 32), Addr: "169.254.169.254:80"})
	p := startProxy(t, gw, nil)
	seg := gw.window.Segments[1]
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	p.settle(t)
	assert.Zero(t, accepted.Load(), "no connection to a neighbour the policy refuses")
	assert.Equal(t, int64(2), p.Status().AddrRefused)
}

// TestOutageServesCopy: while the gateway cannot serve, a player gets the last playlist
// and the segments the proxy holds, for the grace; then the gateway's error.
func TestOutageServesCopy(t *testing.T) {
	clock := newFakeClock()
	gw := newFakeGateway(3)
	p := startProxy(t, gw, func(c *Config) { c.Now = clock.Now; c.OutageGrace = 10 * time.Second })
	_, before := httpGet(t, p.player.URL+"/live/tv/index.m3u8")
	seg := gw.window.Segments[0]
	p.play(t, http.MethodGet, seg.Name, "")

	gw.set(func(g *fakeGateway) { g.down = true })
	clock.advance(5 * time.Second)
	resp, during := httpGet(t, p.player.URL+"/live/tv/index.m3u8")
	require.Equal(t, http.StatusOK, resp.StatusCode, during)
	assert.Equal(t, before, during)
	resp, _ = httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a held segment")
	clock.advance(time.Second) // past the back-off: the gateway is asked again
	resp, _ = httpGet(t, p.player.URL+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	clock.advance(10 * time.Second) // past the grace
	resp, body := httpGet(t, p.player.URL+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.NotContains(t, body, "internal=")
	assert.NotContains(t, body, "code=")
	p.settle(t)
	assert.Equal(t, int64(2), p.Status().StalePlaylists)

	gw.set(func(g *fakeGateway) { g.down = false })
	resp, _ = httpGet(t, p.player.URL+"/live/tv/index.m3u8")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "back")
}
