package ingest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// secretServer is a service the origin must not reach: it listens on 127.0.0.2 (loopback,
// but another address than the test origins' 127.0.0.1) and counts its requests.
func secretServer(t *testing.T) (base string, hits *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	hits = &atomic.Int64{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "internal secret")
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// publicLoopback classifies 127.0.0.1 as a public address: the test origins listen there
// and stand for an origin on the internet; every other address is classified as usual.
func publicLoopback(a netip.Addr) (swarm.AddrPolicy, bool) {
	if a == netip.MustParseAddr("127.0.0.1") {
		return swarm.AddrPublic, true
	}
	return addrClass(a)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// TestOriginAddressPolicy: an origin on a public address (127.0.0.1 classified so) cannot
// make the gateway fetch a loopback or link-local address, by a redirect or by naming it;
// schemes other than http(s) and long redirect chains are refused; with --origin-addrs
// loopback the same fetches go through.
func TestOriginAddressPolicy(t *testing.T) {
	secret, hits := secretServer(t)
	var origin *httptest.Server
	origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-secret":
			http.Redirect(w, r, secret+"/secret", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, origin.URL+"/loop", http.StatusFound)
		case "/hop":
			http.Redirect(w, r, origin.URL+"/seg.ts", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "segment bytes")
		}
	}))
	defer origin.Close()
	src := mustURL(t, origin.URL+"/live.m3u8")
	newOrigin := func(addrs swarm.AddrPolicy) *Origin {
		o := NewOrigin(OriginConfig{Timeout: 2 * time.Second, Addrs: addrs, Sources: []*url.URL{src}})
		o.classify = publicLoopback
		return o
	}
	public := newOrigin(swarm.AddrPublic)

	b, err := public.Get(t.Context(), mustURL(t, origin.URL+"/hop"), 1<<20)
	require.NoError(t, err, "a redirect within the origin is followed")
	assert.Equal(t, "segment bytes", string(b))

	for _, bad := range []struct{ uri, says string }{
		{origin.URL + "/to-secret", "127.0.0.2"},
		{secret + "/secret", "127.0.0.2"},
		{origin.URL + "/to-metadata", "169.254.169.254"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
		{"http://[::1]:1/", "::1"},
		{origin.URL + "/to-file", `scheme "file"`},
		{"file:///etc/passwd", `scheme "file"`},
		{"ftp://example.com/x.ts", `scheme "ftp"`},
		{origin.URL + "/loop", "more than 5 redirects"},
	} {
		_, err = public.Get(t.Context(), mustURL(t, bad.uri), 1<<20)
		require.ErrorIs(t, err, ErrOriginPolicy, bad.uri)
		assert.ErrorContains(t, err, bad.says, bad.uri)
	}
	assert.Zero(t, hits.Load(), "the loopback service was never reached")

	b, err = newOrigin(swarm.AddrLoopback).Get(t.Context(), mustURL(t, origin.URL+"/to-secret"), 1<<20)
	require.NoError(t, err, "--origin-addrs loopback allows loopback targets")
	assert.Equal(t, "internal secret", string(b))
	_, err = newOrigin(swarm.AddrLoopback).Get(t.Context(), mustURL(t, origin.URL+"/to-metadata"), 1<<20)
	require.ErrorIs(t, err, ErrOriginPolicy, "link-local never")
}

// TestOriginPolicyChecksResolvedAddress: the policy applies to the address dialled, not to
// the URL's host: a name that resolves to loopback is refused to a public-only origin
// client; the configured origin's own class is allowed (a loopback origin may name other
// loopback addresses, as the tests and the demo do).
func TestOriginPolicyChecksResolvedAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	byName := mustURL(t, fmt.Sprintf("http://localhost:%d/x", port))

	_, err := NewOrigin(OriginConfig{Timeout: 2 * time.Second}).Get(t.Context(), byName, 1<<20)
	require.ErrorIs(t, err, ErrOriginPolicy)
	assert.ErrorContains(t, err, "--origin-addrs")

	// The configured origin is on loopback: loopback targets are fine, by name or not.
	o := NewOrigin(OriginConfig{Timeout: 2 * time.Second, Sources: []*url.URL{mustURL(t, srv.URL+"/live.m3u8")}})
	b, err := o.Get(t.Context(), byName, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(b))
}

// TestHLSIngestRefusesInternalSegment: a playlist from a public origin whose segment URI
// names a loopback service: the poll fails, nothing is published, the service is never
// asked.
func TestHLSIngestRefusesInternalSegment(t *testing.T) {
	secret, hits := secretServer(t)
	m3u8 := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:2,\n" + secret + "/secret.ts\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, m3u8)
	}))
	defer srv.Close()
	src := mustURL(t, srv.URL+"/live.m3u8")
	o := NewOrigin(OriginConfig{Timeout: 2 * time.Second, Sources: []*url.URL{src}})
	o.classify = publicLoopback
	cfg := testConfig()
	d, err := Discover(t.Context(), o, []*url.URL{src}, cfg)
	require.NoError(t, err)
	win := &recordingWindow{}
	in := d.Ingest(Target{Channel: "tv", Window: win}).(*HLS)
	err = in.Poll(t.Context())
	require.ErrorIs(t, err, ErrOriginPolicy)
	assert.True(t, strings.Contains(err.Error(), "segment 1"), err.Error())
	assert.Empty(t, win.segments())
	assert.Zero(t, hits.Load())
}

// TestProbeTricklingOrigin: an origin that answers at once, then sends a byte every 50 ms
// for ever, holds the discovery probe no longer than the origin timeout.
func TestProbeTricklingOrigin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := w.Write([]byte("#")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}))
	defer srv.Close()
	src := mustURL(t, srv.URL+"/live.m3u8")
	o := NewOrigin(OriginConfig{Timeout: 500 * time.Millisecond, Sources: []*url.URL{src}})
	start := time.Now()
	_, _, err := o.probe(t.Context(), src)
	require.Error(t, err)
	assert.ErrorContains(t, err, "no answer within 500ms")
	assert.Less(t, time.Since(start), 2*time.Second)
}
