//go:build e2e

package main

// HTTPS between the parts: a gateway serving a certificate of a private CA (the rawflow
// binary, one process each, as a deployment runs it), players over HTTP/2, proxies that
// trust that CA (--gateway-ca) and one that does not.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/tlstest"
	"github.com/rawflow/rawflow/loadtest"
)

// TestGatewayHTTPS: a gateway with --tls-cert/--tls-key (a private CA's certificate for
// 127.0.0.1) serves players over HTTP/2 and redirects its plain port to https; a proxy with
// --gateway-ca plays through it (playlist and segment bytes equal to the gateway's); a
// proxy without it refuses the gateway (502, a certificate error in its log, counted); a
// new certificate is served after SIGHUP.
func TestGatewayHTTPS(t *testing.T) {
	t.Parallel()
	fx := newProcFixture(t)
	ca, dir := tlstest.NewCA(t), t.TempDir()
	caFile := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1")
	certFile, keyFile := tlstest.WriteFile(t, dir, "cert.pem", certPEM), tlstest.WriteFile(t, dir, "key.pem", keyPEM)
	addrs := loopbackAddrs(t, 6)
	gw := fx.start("gateway", "gateway", "--listen", addrs[0], "--http-listen", addrs[1], "--channel", "demo=demo",
		"--tls-cert", certFile, "--tls-key", keyFile, "--peer-addrs", "loopback")
	gwURL := "https://" + addrs[0]
	player := tlsClient(ca.Pool(), "")

	// Players: HTTP/2 with the CA's certificate.
	proto, playlist := pollGet(t, player, gwURL+"/live/demo/index.m3u8", 20*time.Second)
	assert.Equal(t, 2, proto, "HTTP/2 to a player")
	assert.Contains(t, playlist, "#EXTM3U")

	// The plain port redirects to https.
	plain := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get("http://" + addrs[1] + "/live/demo/index.m3u8?x=1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Equal(t, gwURL+"/live/demo/index.m3u8?x=1", resp.Header.Get("Location"))

	// A proxy trusting the CA plays: its segment bytes are the gateway's.
	fx.start("trusting proxy", "peer", "--gateway", gwURL, "--gateway-ca", caFile, "--listen", addrs[2], "--peer-listen", addrs[3])
	direct := &http.Client{Timeout: 5 * time.Second}
	_, proxied := pollGet(t, direct, "http://"+addrs[2]+"/live/demo/index.m3u8", 20*time.Second)
	seg := firstURI(t, proxied)
	_, viaProxy := pollGet(t, direct, "http://"+addrs[2]+"/live/demo/"+seg, 10*time.Second)
	_, fromGateway := pollGet(t, player, gwURL+"/live/demo/"+seg, 10*time.Second)
	require.NotEmpty(t, fromGateway)
	assert.Equal(t, fromGateway, viaProxy, "segment %s through the proxy", seg)

	// The benchmark plays it too: its proxies and its direct player trust the CA; without
	// it, it stops at once on the certificate.
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"swarm", "--gateway", gwURL, "--gateway-ca", caFile, "--channel", "demo",
		"--viewers", "2", "--direct", "1", "--duration", "8s", "--json"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	var r loadtest.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), stdout.String())
	assert.Equal(t, 2, r.Viewers)
	assert.Zero(t, r.NotStarted, "every player started")
	assert.Zero(t, r.PlayerErrors)
	assert.Positive(t, r.BytesFromGateway+r.BytesFromPeers, "the proxies got segments")
	stderr.Reset()
	err = run(t.Context(), []string{"swarm", "--gateway", gwURL, "--channel", "demo", "--viewers", "1", "--duration", "8s"}, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate does not verify")

	// A proxy without the CA refuses the gateway.
	untrusting := fx.start("untrusting proxy", "peer", "--gateway", gwURL, "--listen", addrs[4], "--peer-listen", addrs[5])
	waitHTTP(t, "http://"+addrs[4]+"/api/v1/status", 10*time.Second)
	resp, err = direct.Get("http://" + addrs[4] + "/live/demo/index.m3u8")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode, string(body))
	fx.eventually(5*time.Second, "the untrusting proxy logs the certificate error", func() bool {
		out := untrusting.out.tail(64 << 10)
		return strings.Contains(out, "refusing the gateway: its certificate does not verify") && strings.Contains(out, "x509")
	})
	_, status := pollGet(t, direct, "http://"+addrs[4]+"/api/v1/status", 5*time.Second)
	assert.NotContains(t, status, `"gateway_cert_refused":0`)

	// SIGHUP: the files' new certificate is served to new connections.
	certPEM, keyPEM = ca.Issue(t, "127.0.0.1")
	tlstest.WriteFile(t, dir, "cert.pem", certPEM)
	tlstest.WriteFile(t, dir, "key.pem", keyPEM)
	want, err := parseCertPEM(certPEM)
	require.NoError(t, err)
	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGHUP))
	fx.eventually(10*time.Second, "the new certificate is served", func() bool {
		c := tlsClient(ca.Pool(), "")
		resp, err := c.Get(gwURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Cmp(want.SerialNumber) == 0
	})
}

// newProcFixture runs rawflow processes (faultFixture.start) without Redis.
func newProcFixture(t *testing.T) *faultFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("process tests: not in -short")
	}
	fx := &faultFixture{t: t, bin: buildRawflow(t)}
	ctx, cancel := context.WithCancel(t.Context())
	fx.ctx = ctx
	t.Cleanup(func() { cancel(); fx.wg.Wait() })
	return fx
}

// loopbackAddrs picks n free ports on 127.0.0.1.
func loopbackAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close() // held until all are picked, so none is picked twice
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// tlsClient is a player's client trusting roots alone, offering HTTP/2, on new
// connections each time; with dialTo set, it dials that address whatever the URL's host
// (a name without DNS).
func tlsClient(roots *x509.CertPool, dialTo string) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, DisableKeepAlives: true}
	if dialTo != "" {
		d := &net.Dialer{Timeout: 3 * time.Second}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, dialTo)
		}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// pollGet GETs url until it answers 200 (bounded) and returns the response's major HTTP
// version and its body.
func pollGet(t *testing.T, c *http.Client, url string, within time.Duration) (proto int, body string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return resp.ProtoMajor, string(b)
			}
			err = fmt.Errorf("%s: %s", resp.Status, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: not 200 within %s: %v", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firstURI returns a media playlist's first segment URI.
func firstURI(t *testing.T, m3u8 string) string {
	t.Helper()
	for line := range strings.Lines(m3u8) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	t.Fatalf("no segment in %q", m3u8)
	return ""
}

// parseCertPEM parses the first certificate in PEM data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}
