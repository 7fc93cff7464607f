package peerassist

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tlsGateway serves gw over HTTPS (HTTP/2 offered) with httptest's certificate, and counts
// the requests that reach it by protocol version.
func tlsGateway(t *testing.T, gw *fakeGateway) (srv *httptest.Server, roots *x509.CertPool, protos *sync.Map) {
	t.Helper()
	protos = &sync.Map{}
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := protos.LoadOrStore(r.ProtoMajor, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		gw.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots = x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv, roots, protos
}

// TestGatewayOverHTTPS: a proxy trusting the gateway's CA joins (event stream), plays the
// playlist and a segment through it, all over HTTP/2; a proxy that does not trust it
// fetches nothing: its player gets 502, the refusal is counted and logged once.
func TestGatewayOverHTTPS(t *testing.T) {
	gw := newFakeGateway(3)
	srv, roots, protos := tlsGateway(t, gw)

	p := startProxy(t, gw, func(c *Config) { c.GatewayURL, c.GatewayRoots = srv.URL, roots })
	seg := gw.window.Segments[1]
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	h2, _ := protos.Load(2)
	require.NotNil(t, h2, "no request over HTTP/2")
	_, h1 := protos.Load(1)
	assert.False(t, h1, "a request over HTTP/1")
	assert.Zero(t, p.Status().GatewayCertRefused)

	var logs syncBuffer
	untrusting, err := New(Config{GatewayURL: srv.URL, AdvertiseAddr: "127.0.0.1:1", noPrefetch: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	player := httptest.NewServer(untrusting.PlayerHandler())
	t.Cleanup(player.Close)
	before := h2.(*atomic.Int64).Load()
	for range 3 {
		resp, body = httpGet(t, player.URL+"/live/tv/index.m3u8")
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
		assert.Contains(t, body, "certificate")
	}
	assert.Equal(t, before, h2.(*atomic.Int64).Load(), "a request reached the untrusted gateway")
	assert.GreaterOrEqual(t, untrusting.Status().GatewayCertRefused, int64(1))
	assert.Equal(t, 1, bytes.Count(logs.bytes(), []byte("refusing the gateway: its certificate does not verify")), logs.String())
}

// syncBuffer is a buffer a logger writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *syncBuffer) String() string { return string(b.bytes()) }
