//go:build e2e

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/swarm"
)

// rawGet sends path exactly as given (no client-side cleaning or escaping) and returns the
// status and up to 64 KiB of body, over TLS with cfg (nil: plain HTTP).
func rawGet(t *testing.T, addr, path string, cfg *tls.Config) (int, string) {
	t.Helper()
	var conn net.Conn
	var err error
	if cfg != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	} else {
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
	}
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, path)
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(body)
}

// TestOddPathsOnEveryRoute: traversal attempts and odd encodings on every route of the
// gateway, the proxy's player port and its neighbour port get a 4xx, never a file, a
// playlist or a server error.
func TestOddPathsOnEveryRoute(t *testing.T) {
	t.Parallel()
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = origin.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	st := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.url}}}}, 1)
	p := st.peers[0]
	hosts := map[string]string{
		"gateway":   strings.TrimPrefix(st.gw.url, "http://"),
		"player":    strings.TrimPrefix(p.url, "http://"),
		"neighbour": p.neighbour.Addr().String(),
	}
	paths := []string{
		"/../../../../etc/passwd",
		"/live/../../etc/passwd",
		"/live/tv/..%2f..%2f..%2fetc%2fpasswd",
		"/live/tv/%2e%2e/%2e%2e/etc/passwd",
		"/live/tv/%252e%252e%252fetc%252fpasswd",
		"/live/tv/r0/../../../etc/passwd",
		"/live/tv/a%00.ts",
		"/live/%00/index.m3u8",
		"/live/tv%2f..%2f/index.m3u8",
		"/live/tv/%ff%fe.ts",
		"/live/tv/\u00ff\u00fe.ts",
		"/live/tv/" + strings.Repeat("a", 4000) + ".ts",
		"/live/tv/r99999/index.m3u8",
		"/live/tv/r0/r1/r2/index.m3u8",
		"/live/nochannel/index.m3u8",
		"/live/tv/index.m3u8/..",
		"/peer/v1/segments/..%2f..%2fetc%2fpasswd",
		"/peer/v1/segments/" + strings.Repeat("0", 64) + "/../../x",
		"/peer/v1/segments/" + strings.Repeat("g", 64),
		"/api/v1/stats/../../../etc/passwd",
		"/api/v1/swarm/lookup/../../x",
		"/%2e%2e/%2e%2e/",
		"//etc/passwd",
		"/ui/../../go.mod",
		"/ui/..%2f..%2fgo.mod",
		"/ui/%2e%2e/%2e%2e/go.mod",
		"/ui/vendor/..%2f..%2fweb.go",
		"/preview/..%2f..%2fetc%2fpasswd",
		"/preview/tv/../../../etc/passwd",
		"/api/v1/channels/..%2f..%2f/series",
		"/api/v1/channels/tv%2f..%2f/export.csv",
	}
	// The neighbour port speaks TLS with the proxy's own certificate: past the handshake,
	// the paths reach its handler.
	neighbourTLS := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13} //nolint:gosec // a test client of a self-signed port
	for name, addr := range hosts {
		var cfg *tls.Config
		if name == "neighbour" {
			cfg = neighbourTLS
		}
		for _, path := range paths {
			code, body := rawGet(t, addr, path, cfg)
			assert.True(t, code >= 400 && code < 500 || code == http.StatusMovedPermanently,
				"%s %s: status %d", name, path, code)
			assert.NotContains(t, body, "root:", "%s %s", name, path)
			assert.NotContains(t, body, "#EXTM3U", "%s %s", name, path)
			assert.NotContains(t, body, "module github.com/rawflow", "%s %s", name, path)
			assert.NotContains(t, body, "package web", "%s %s", name, path)
		}
	}
}
