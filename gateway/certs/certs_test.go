package certs

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/internal/tlstest"
)

// TestFilesReload: the pair is served as loaded; Reload serves the files' new pair to new
// connections, and a reload that fails keeps the pair in use.
func TestFilesReload(t *testing.T) {
	ca, dir := tlstest.NewCA(t), t.TempDir()
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1")
	certFile, keyFile := tlstest.WriteFile(t, dir, "cert.pem", certPEM), tlstest.WriteFile(t, dir, "key.pem", keyPEM)
	f, err := LoadFiles(certFile, keyFile)
	require.NoError(t, err)
	url := serveTLS(t, f.TLSConfig())
	served := func() string {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, DisableKeepAlives: true}}
		resp, gerr := c.Get(url)
		require.NoError(t, gerr)
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	first := served()
	assert.Equal(t, f.Certificate().Leaf.SerialNumber.String(), first)

	certPEM, keyPEM = ca.Issue(t, "127.0.0.1")
	tlstest.WriteFile(t, dir, "cert.pem", certPEM)
	tlstest.WriteFile(t, dir, "key.pem", keyPEM)
	require.NoError(t, f.Reload())
	second := served()
	assert.NotEqual(t, first, second)

	tlstest.WriteFile(t, dir, "key.pem", []byte("not a key"))
	require.Error(t, f.Reload())
	assert.Equal(t, second, served(), "a failed reload keeps the pair in use")

	_, err = LoadFiles(certFile, "")
	require.Error(t, err)
}

// TestServeTLSOffersHTTP2: the files' configuration on httpx.ServeTLS speaks HTTP/2 to a
// client that offers it, HTTP/1.1 to one that does not.
func TestServeTLSOffersHTTP2(t *testing.T) {
	ca, dir := tlstest.NewCA(t), t.TempDir()
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1")
	f, err := LoadFiles(tlstest.WriteFile(t, dir, "cert.pem", certPEM), tlstest.WriteFile(t, dir, "key.pem", keyPEM))
	require.NoError(t, err)
	url := serveTLS(t, f.TLSConfig())
	for _, tc := range []struct {
		h2    bool
		major int
	}{{true, 2}, {false, 1}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: tc.h2}
		resp, err := (&http.Client{Transport: tr}).Get(url)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.major, resp.ProtoMajor)
		tr.CloseIdleConnections()
	}
}

// serveTLS serves an empty handler with cfg (httpx.ServeTLS, as the gateway does) on
// 127.0.0.1 until the test ends and returns its URL.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- httpx.ServeTLS(ctx, ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), cfg, nil)
	}()
	t.Cleanup(func() { cancel(); assert.NoError(t, <-done) })
	return "https://" + ln.Addr().String() + "/"
}

func TestRedirect(t *testing.T) {
	for _, tc := range []struct{ method, host, port, want string }{
		{http.MethodGet, "gw.example", "443", "https://gw.example/live/tv/index.m3u8?x=1"},
		{http.MethodGet, "gw.example:80", "8443", "https://gw.example:8443/live/tv/index.m3u8?x=1"},
		{http.MethodHead, "[::1]:80", "443", "https://[::1]/live/tv/index.m3u8?x=1"},
		{http.MethodGet, "[::1]:80", "8443", "https://[::1]:8443/live/tv/index.m3u8?x=1"},
		{http.MethodPost, "gw.example", "443", ""},
	} {
		req := httptest.NewRequest(tc.method, "/live/tv/index.m3u8?x=1", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		Redirect(tc.port).ServeHTTP(rec, req)
		if tc.want == "" {
			assert.Equal(t, http.StatusBadRequest, rec.Code)
			continue
		}
		assert.Equal(t, http.StatusFound, rec.Code, tc)
		assert.Equal(t, tc.want, rec.Header().Get("Location"), tc)
	}
}

func TestACMEConfigValidate(t *testing.T) {
	ok := ACMEConfig{Domains: []string{"gw.example.com"}, CacheDir: t.TempDir()}
	require.NoError(t, ok.Validate())
	for name, tweak := range map[string]func(*ACMEConfig){
		"no domain":      func(c *ACMEConfig) { c.Domains = nil },
		"IP address":     func(c *ACMEConfig) { c.Domains = []string{"127.0.0.1"} },
		"IPv6 address":   func(c *ACMEConfig) { c.Domains = []string{"[::1]"} },
		"no dot":         func(c *ACMEConfig) { c.Domains = []string{"localhost"} },
		"odd characters": func(c *ACMEConfig) { c.Domains = []string{"gw.example.com/x"} },
		"no cache":       func(c *ACMEConfig) { c.CacheDir = "" },
		"plain http":     func(c *ACMEConfig) { c.DirectoryURL = "http://acme.example/dir" },
	} {
		c := ok
		tweak(&c)
		assert.Error(t, c.Validate(), name)
	}
}
