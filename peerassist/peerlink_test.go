package peerassist

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// testPeerKey is the fake gateway's peer key: the swarm keys its hellos give derive from it.
var testPeerKey = []byte("the fake gateway's peer key")

// testCert is the certificate of the tests' fake neighbour ports, testCertFP its
// fingerprint.
var testCert, testCertFP = mustNeighbourCert()

func mustNeighbourCert() (tls.Certificate, string) {
	c, fp, err := NewNeighbourCert()
	if err != nil {
		panic(err)
	}
	return c, fp
}

// tlsNeighbourUnstarted is a fake neighbour port serving h over TLS with testCert, to be
// started with StartTLS.
func tlsNeighbourUnstarted(h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{testCert}}
	return s
}

// tlsNeighbour is tlsNeighbourUnstarted, started.
func tlsNeighbour(h http.Handler) *httptest.Server {
	s := tlsNeighbourUnstarted(h)
	s.StartTLS()
	return s
}

// keysOf looks up the swarm keys a gateway with peerKey gives for channel, by window.
func keysOf(peerKey []byte, channel string) func(int64) (swarm.ChannelKey, bool) {
	return func(w int64) (swarm.ChannelKey, bool) {
		return swarm.ChannelKeys(peerKey, channel, time.Unix(w*int64(swarm.CredentialWindow/time.Second), 0))[0], true
	}
}

// testCredential is the swarm credential of a neighbour request for path in channel at
// now, as a peer the fake gateway admitted makes it.
func testCredential(channel, path string, now time.Time) string {
	v, _ := swarm.SignNeighbourRequest(keysOf(testPeerKey, channel), channel, path, now)
	return v
}

// neighbourClient is a client of tp's neighbour port: TLS pinned to its certificate.
func (tp *testProxy) neighbourClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: PinnedTLS(tp.CertFingerprint())}}
}

// neighbourRequest is a request for path to tp's neighbour port, with the credential of a
// peer of channel tv.
func (tp *testProxy) neighbourRequest(t testing.TB, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tp.neighbour.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set(swarm.NeighbourAuthHeader, testCredential("tv", path, time.Now()))
	return req
}

// neighbourGet GETs path from tp's neighbour port as an admitted peer of channel tv does.
func (tp *testProxy) neighbourGet(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	return doRead(t, tp.neighbourClient(), tp.neighbourRequest(t, path))
}

func doRead(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestNeighbourPortAdmitsOnlySwarmMembers: the neighbour port serves a request signed with
// the channel's swarm key of the moment, and nothing but a 401 or 403 to one without a
// credential, with a malformed one, with another gateway's key, with another channel's,
// with an expired key or an old signature; a credential of another channel this proxy is a
// member of gets none of this channel's segments.
func TestNeighbourPortAdmitsOnlySwarmMembers(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	seg := gw.window.Segments[0]
	path := swarm.NeighbourSegmentPath + seg.Digest.String()
	resp, body := p.neighbourGet(t, path)
	require.Equal(t, http.StatusOK, resp.StatusCode, "admitted")
	require.Equal(t, string(gw.data[seg.Name]), body)

	now := time.Now()
	sign := func(keys func(int64) (swarm.ChannelKey, bool), channel string, at time.Time) string {
		v, _ := swarm.SignNeighbourRequest(keys, channel, path, at)
		return v
	}
	past := now.Add(-3 * swarm.CredentialWindow)
	expired := func(int64) (swarm.ChannelKey, bool) { return swarm.ChannelKeys(testPeerKey, "tv", past)[0], true }
	for _, tc := range []struct {
		name, credential string
		want             int
	}{
		{"none", "", http.StatusUnauthorized},
		{"malformed", "tv 1 2", http.StatusUnauthorized},
		{"another gateway's key", sign(keysOf([]byte("another key"), "tv"), "tv", now), http.StatusForbidden},
		{"another channel's key", sign(keysOf(testPeerKey, "radio"), "radio", now), http.StatusForbidden},
		{"another channel's key, named tv", strings.Replace(sign(keysOf(testPeerKey, "radio"), "radio", now), "radio", "tv", 1), http.StatusForbidden},
		{"an expired key", sign(expired, "tv", now), http.StatusForbidden},
		{"an old signature", sign(keysOf(testPeerKey, "tv"), "tv", now.Add(-2*swarm.CredentialSkew)), http.StatusForbidden},
		{"for another path", strings.Replace(testCredential("tv", path+"0", now), path+"0", path, 1), http.StatusForbidden},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.neighbour.URL+path, nil)
		require.NoError(t, err)
		if tc.credential != "" {
			req.Header.Set(swarm.NeighbourAuthHeader, tc.credential)
		}
		resp, body = doRead(t, p.neighbourClient(), req)
		assert.Equal(t, tc.want, resp.StatusCode, tc.name)
		assert.NotContains(t, body, "segment 0;", tc.name)
	}
	assert.Equal(t, int64(8), p.Status().NeighbourRefused)

	// A member of radio too: radio's credential is good, for radio's segments only.
	p.member("radio").takeKeys(swarm.ChannelKeys(testPeerKey, "radio", now), now)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.neighbour.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set(swarm.NeighbourAuthHeader, sign(keysOf(testPeerKey, "radio"), "radio", now))
	resp, body = doRead(t, p.neighbourClient(), req)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "not a segment of radio")
	assert.NotContains(t, body, "segment 0;")
}

// relay is a TCP relay on 127.0.0.1 that records the bytes it carries each way.
type relay struct {
	ln net.Listener

	mu       sync.Mutex // guards the following fields
	up, down bytes.Buffer
}

func newRelay(t *testing.T, to string) *relay {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &relay{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var d net.Dialer
			s, err := d.DialContext(t.Context(), "tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			go r.copy(s, c, &r.up)
			go r.copy(c, s, &r.down)
		}
	}()
	return r
}

// copy carries src to dst, recording it in rec.
func (r *relay) copy(dst, src net.Conn, rec *bytes.Buffer) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		r.mu.Lock()
		rec.Write(buf[:n])
		r.mu.Unlock()
		if _, werr := dst.Write(buf[:n]); err != nil || werr != nil {
			return
		}
	}
}

func (r *relay) recorded() (up, down []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.up.Bytes()), bytes.Clone(r.down.Bytes())
}

// TestPeerLinkEncrypted: a segment that goes from one proxy to another through a relay
// that records the wire is not in plain text there, nor is the request: both directions
// start with a TLS handshake record.
func TestPeerLinkEncrypted(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	a := startProxy(t, gw, nil) // the root: it gets the segment from the gateway
	resp, _ := httpGet(t, a.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	r := newRelay(t, strings.TrimPrefix(a.neighbour.URL, "https://"))
	gw.setSources(swarm.Source{ID: strings.Repeat("a", 32), Addr: r.ln.Addr().String(), Cert: a.CertFingerprint()})
	b := startProxy(t, gw, nil)
	resp, body := httpGet(t, b.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, string(gw.data[seg.Name]), body)
	require.Equal(t, int64(1), b.Status().Channels["tv"].SegmentsFromPeers, "through the relay")

	up, down := r.recorded()
	require.NotEmpty(t, up)
	require.Greater(t, len(down), int(seg.Size), "the segment went down the relay")
	for _, wire := range [][]byte{up, down} {
		assert.Equal(t, []byte{0x16, 0x03}, wire[:2], "a TLS handshake record first")
		for _, plain := range []string{"segment 0;", swarm.NeighbourSegmentPath, seg.Digest.String(), swarm.NeighbourAuthHeader, "HTTP/1.1"} {
			assert.NotContains(t, string(wire), plain)
		}
	}
}

// TestNeighbourCertificatePinned: a neighbour that presents a certificate other than the one
// the plan names gets no request (the handshake fails first) and none of its bytes are
// used: the player gets the gateway's, and the neighbour counts as failed.
func TestNeighbourCertificatePinned(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	var hits atomic.Int64
	addr := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(gw.data[seg.Name])
	})
	_, otherFP := mustNeighbourCert()
	src := swarm.Source{ID: strings.Repeat("b", 32), Addr: addr, Cert: otherFP}
	gw.setSources(src)
	p := startProxy(t, gw, nil)
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Zero(t, hits.Load(), "no request reached the impostor")
	st := p.Status().Channels["tv"]
	assert.Equal(t, int64(0), st.SegmentsFromPeers)
	assert.Equal(t, int64(1), st.NeighbourFailures)
	assert.False(t, p.neigh.usable(src.ID, time.Now()), "skipped for a while")
}
