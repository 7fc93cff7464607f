//go:build e2e

package main

// ACME against pebble, Let's Encrypt's test CA: built here with `go install` from its own
// module (pinned below, into the test's temporary directory; the Go build and module caches
// make later runs quick), run on 127.0.0.1 with validation skipped (PEBBLE_VA_ALWAYS_VALID:
// no DNS for the test's name) and certificates that live 10 s, so that renewal happens
// within the test.

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/tlstest"
)

// pebbleModule is the pebble the test builds.
const pebbleModule = "github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3"

// TestGatewayACME: a gateway with --acme-domain obtains a certificate from pebble at start
// (its directory trusted through --acme-ca), keeps it in --acme-cache, and serves HTTPS
// with it over HTTP/2 to a client that trusts pebble's root; a name it was not given
// fails the handshake. Pebble's certificates live 10 s: once a third of that is left the
// gateway renews, and serves the new certificate, without a restart and without a failed
// handshake in between.
func TestGatewayACME(t *testing.T) {
	t.Parallel()
	fx := newProcFixture(t)
	pebble, dir := buildPebble(t), t.TempDir()
	ca := tlstest.NewCA(t) // pebble's own HTTPS certificate (its ACME and management APIs)
	caFile := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	addrs := loopbackAddrs(t, 4)
	acmeAddr, mgmtAddr, gwAddr, plainAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	pebbleConfig(t, dir, ca, acmeAddr, mgmtAddr, gwAddr, plainAddr, 10)
	fx.startProgram("pebble", pebble, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", filepath.Join(dir, "pebble.json"))
	trustCA := tlsClient(ca.Pool(), "")
	pollGet(t, trustCA, "https://"+acmeAddr+"/dir", 10*time.Second)
	_, rootPEM := pollGet(t, trustCA, "https://"+mgmtAddr+"/roots/0", 5*time.Second)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM([]byte(rootPEM)), "pebble's root: %q", rootPEM)

	const domain = "gw.rawflow.test"
	cache := filepath.Join(dir, "acme-cache")
	fx.start("gateway", "gateway", "--listen", gwAddr, "--http-listen", plainAddr, "--channel", "demo=demo",
		"--acme-domain", domain, "--acme-dir", "https://"+acmeAddr+"/dir", "--acme-ca", caFile,
		"--acme-cache", cache, "--acme-email", "ops@rawflow.test")
	player := tlsClient(roots, gwAddr)                               // dials the gateway for gw.rawflow.test: no DNS
	url := "https://" + domain + ":" + strings.Split(gwAddr, ":")[1] // dialled at gwAddr
	proto, _ := pollGet(t, player, url+"/live/demo/index.m3u8", 20*time.Second)
	assert.Equal(t, 2, proto, "HTTP/2 to a player")
	first := servedLeaf(t, player, url+"/healthz")
	assert.Equal(t, []string{domain}, first.DNSNames)
	assert.FileExists(t, filepath.Join(cache, domain), "the certificate persists in --acme-cache")

	resp, err := tlsClient(roots, gwAddr).Get("https://other.rawflow.test:" + strings.Split(gwAddr, ":")[1] + "/healthz")
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "a name not given with --acme-domain")

	// Renewal: a new certificate before the first expires, every handshake meanwhile good.
	deadline := first.NotAfter.Add(3 * time.Second)
	for {
		leaf := servedLeaf(t, player, url+"/healthz") // fails the test on a failed handshake
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			assert.True(t, time.Now().Before(first.NotAfter), "renewed only after the first certificate expired")
			assert.False(t, leaf.NotBefore.Before(first.NotBefore))
			assert.Equal(t, []string{domain}, leaf.DNSNames)
			break
		}
		require.True(t, time.Now().Before(deadline), "no renewal by %s (first certificate: %s to %s)", deadline, first.NotBefore, first.NotAfter)
		time.Sleep(200 * time.Millisecond)
	}
}

// servedLeaf returns the certificate the gateway serves at url (a new connection).
func servedLeaf(t *testing.T, c *http.Client, url string) *x509.Certificate {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.TLS.PeerCertificates[0]
}

// buildPebble installs pebble into the test's temporary directory and returns its path.
func buildPebble(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "go", "install", pebbleModule)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go install %s: %s", pebbleModule, out)
	return filepath.Join(bin, "pebble")
}

// pebbleConfig writes dir/pebble.json: the ACME API on acmeAddr and the management API
// (roots) on mgmtAddr, over HTTPS with a certificate of ca, and certificates that live
// validity seconds. The validation ports name the gateway's (unused: validation is
// skipped).
func pebbleConfig(t *testing.T, dir string, ca *tlstest.CA, acmeAddr, mgmtAddr, gwAddr, plainAddr string, validity int) {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", "localhost")
	port := func(addr string) int {
		n, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
		require.NoError(t, err)
		return n
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  acmeAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    tlstest.WriteFile(t, dir, "pebble-cert.pem", certPEM),
		"privateKey":                     tlstest.WriteFile(t, dir, "pebble-key.pem", keyPEM),
		"httpPort":                       port(plainAddr),
		"tlsPort":                        port(gwAddr),
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "short-lived, for renewal within the test", "validityPeriod": validity}},
	}}
	data, err := json.Marshal(cfg)
	require.NoError(t, err)
	tlstest.WriteFile(t, dir, "pebble.json", data)
}
