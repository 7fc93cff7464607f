package peerassist

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProxyMetricsAndCORS(t *testing.T) {
	gw := newFakeGateway(4)
	tp := startProxy(t, gw, nil)
	seg := gw.window.Segments[0]
	get, err := http.NewRequest(http.MethodGet, tp.player.URL+"/live/tv/"+seg.Name, nil)
	require.NoError(t, err)
	get.Header.Set("Origin", "https://broadcaster.example")
	resp, err := http.DefaultClient.Do(get)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), "web players may play through the proxy")
	tp.settle(t)

	resp, body := httpGet(t, tp.player.URL+"/metrics")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, line := range []string{
		`rawflow_peer_bytes_total{channel="tv",source="gateway"} ` + itoa(seg.Size),
		`rawflow_peer_segments_total{channel="tv",source="gateway"} 1`,
		`rawflow_peer_stalls_total{channel="tv"} 0`,
		`rawflow_peer_startup_seconds_count 1`,
	} {
		assert.Contains(t, body, line+"\n")
	}
	assert.Contains(t, body, "rawflow_peer_cache_bytes ")

	// A preflight from a public page to this private address.
	req, err := http.NewRequest(http.MethodOptions, tp.player.URL+"/live/tv/index.m3u8", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://broadcaster.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Private-Network", "true")
	pre, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	pre.Body.Close()
	assert.Equal(t, http.StatusNoContent, pre.StatusCode)
	assert.Equal(t, "*", pre.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", pre.Header.Get("Access-Control-Allow-Private-Network"))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
