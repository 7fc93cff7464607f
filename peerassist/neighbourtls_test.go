package peerassist

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
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

// tlsNeighbour serves a proxy's neighbour handler over TLS with its own certificate, as
// Node does, and returns the server's address.
func tlsNeighbour(t *testing.T, p *Proxy) string {
	t.Helper()
	s := httptest.NewUnstartedServer(p.NeighbourHandler())
	s.TLS = p.NeighbourTLS()
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// wireTap is a TCP relay to one address that records what goes each way.
type wireTap struct {
	ln       net.Listener
	mu       sync.Mutex // guards up, down, conns
	up, down bytes.Buffer
	conns    []net.Conn
}

func newWireTap(t *testing.T, to string) *wireTap {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	w := &wireTap{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		w.mu.Lock()
		for _, c := range w.conns {
			c.Close()
		}
		w.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
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
			w.mu.Lock()
			w.conns = append(w.conns, c, s)
			w.mu.Unlock()
			wg.Go(func() { w.copy(s, c, &w.up) })
			wg.Go(func() { w.copy(c, s, &w.down) })
		}
	})
	return w
}

// copy carries src to dst, recording it, until either side ends (then both close).
func (w *wireTap) copy(dst, src net.Conn, rec *bytes.Buffer) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		w.mu.Lock()
		rec.Write(buf[:n])
		w.mu.Unlock()
		if _, werr := dst.Write(buf[:n]); err != nil || werr != nil {
			return
		}
	}
}

func (w *wireTap) recorded() (up, down string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up.String(), w.down.String()
}

// TestNeighbourTransferEncrypted: a segment that goes from one proxy's neighbour port to
// another proxy through a tap that records the wire is not in clear there, nor is the
// request (path, digest, swarm credential): both directions are TLS records. The same tap
// on a plain source (a plan that names no certificate) does see them: the tap works.
func TestNeighbourTransferEncrypted(t *testing.T) {
	gw := newFakeGateway(2)
	a := startProxy(t, gw, nil) // the root: it gets the segments from the gateway
	for _, seg := range gw.window.Segments {
		resp, _ := httpGet(t, a.player.URL+"/live/tv/"+seg.Name)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	wires := map[bool]*wireTap{true: newWireTap(t, tlsNeighbour(t, a.Proxy)),
		false: newWireTap(t, strings.TrimPrefix(a.neighbour.URL, "http://"))}
	for i, encrypted := range []bool{true, false} {
		seg := gw.window.Segments[i]
		src := swarm.Source{ID: strings.Repeat("a", 32), Addr: wires[encrypted].ln.Addr().String()}
		if encrypted {
			src.Cert = a.CertFingerprint()
		}
		gw.setSources(src)
		b := startProxy(t, gw, nil)
		resp, body := httpGet(t, b.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, string(gw.data[seg.Name]), body)
		require.Equal(t, int64(1), b.Status().Channels["tv"].SegmentsFromPeers, "through the tap")

		up, down := wires[encrypted].recorded()
		require.Greater(t, len(down), int(seg.Size), "the segment went down the tap")
		secrets := []string{string(gw.data[seg.Name][:64]), swarm.NeighbourSegmentPath, seg.Digest.String(), swarm.NeighbourAuthHeader, "HTTP/1.1"}
		for _, wire := range []string{up, down} {
			if !encrypted {
				assert.True(t, strings.Contains(wire, "HTTP/1.1"), "a plain source's wire is readable")
				continue
			}
			assert.Equal(t, "\x16\x03", wire[:2], "a TLS handshake record first")
			for _, s := range secrets {
				assert.NotContains(t, wire, s)
			}
		}
		if !encrypted {
			assert.Contains(t, up, seg.Digest.String())
			assert.Contains(t, down, string(gw.data[seg.Name][:64]))
		}
	}
}

// TestNeighbourCertificatePinned: a neighbour port that presents a certificate other than
// the one the plan names gets no request: the handshake fails, the segment comes from the
// gateway, and the source counts as failed and is skipped for a while. The same port named
// with its own certificate serves.
func TestNeighbourCertificatePinned(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	impostor, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: "127.0.0.1:1"})
	require.NoError(t, err)
	var hits atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write(gw.data[seg.Name])
	}))
	s.TLS = impostor.NeighbourTLS() // a certificate of its own: not the one the plan names
	s.StartTLS()
	t.Cleanup(s.Close)

	named, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: "127.0.0.1:1"})
	require.NoError(t, err)
	require.NotEqual(t, named.CertFingerprint(), impostor.CertFingerprint())
	src := swarm.Source{ID: strings.Repeat("b", 32), Addr: s.Listener.Addr().String(), Cert: named.CertFingerprint()}
	gw.setSources(src)
	p := startProxy(t, gw, nil)
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Zero(t, hits.Load(), "no request reached the impostor")
	st := p.Status().Channels["tv"]
	assert.Zero(t, st.SegmentsFromPeers)
	assert.Equal(t, int64(1), st.SegmentsFromGateway)
	assert.False(t, p.neigh.usable(src.ID, time.Now()), "skipped for a while")

	src.Cert = impostor.CertFingerprint()
	gw.setSources(src)
	q := startProxy(t, gw, nil)
	resp, body = httpGet(t, q.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D10000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(gw.data[seg.Name]), body)
	assert.Equal(t, int64(1), hits.Load(), "named with its certificate, it serves")
	assert.Equal(t, int64(1), q.Status().Channels["tv"].SegmentsFromPeers)
}

// TestNeighbourTLSOnly13: the neighbour port refuses TLS below 1.3, and speaks HTTP/1.1.
func TestNeighbourTLSOnly13(t *testing.T) {
	p, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: "127.0.0.1:1"})
	require.NoError(t, err)
	addr := tlsNeighbour(t, p)
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12} //nolint:gosec // a test of the server's floor
	_, err = tls.Dial("tcp", addr, old)
	assert.Error(t, err, "TLS 1.2 refused")
	c, err := tls.Dial("tcp", addr, pinnedTLS(p.CertFingerprint(), nil))
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "http/1.1", c.ConnectionState().NegotiatedProtocol)
	_, err = tls.Dial("tcp", addr, pinnedTLS(strings.Repeat("0", 64), nil))
	assert.ErrorIs(t, err, errCertMismatch)
}

// TestNeighbourSessionResumed: a second connection to a neighbour resumes the first's TLS
// session, and the pin still holds on a resumed session: a cache that holds the session
// does not make another certificate acceptable.
func TestNeighbourSessionResumed(t *testing.T) {
	p, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: "127.0.0.1:1"})
	require.NoError(t, err)
	addr := tlsNeighbour(t, p)
	sessions := tls.NewLRUClientSessionCache(4)
	dial := func(fp string) (tls.ConnectionState, error) {
		c, derr := tls.Dial("tcp", addr, pinnedTLS(fp, sessions))
		if derr != nil {
			return tls.ConnectionState{}, derr
		}
		defer c.Close()
		// A request and its answer: the session ticket comes after the handshake.
		req := httptest.NewRequest(http.MethodGet, "http://"+addr+swarm.NeighbourSegmentPath+strings.Repeat("0", 64), nil)
		req.RequestURI = "" // a client's request
		require.NoError(t, req.Write(c))
		resp, rerr := http.ReadResponse(bufio.NewReader(c), req)
		require.NoError(t, rerr)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no swarm credential")
		return c.ConnectionState(), nil
	}
	first, err := dial(p.CertFingerprint())
	require.NoError(t, err)
	assert.False(t, first.DidResume)
	second, err := dial(p.CertFingerprint())
	require.NoError(t, err)
	assert.True(t, second.DidResume, "the second connection resumes")
	_, err = dial(strings.Repeat("0", 64))
	assert.ErrorIs(t, err, errCertMismatch, "a resumed session is pinned too")
}

// BenchmarkNeighbourHandshake: what a neighbour connection's TLS handshake costs, client
// and server together: Go's default key exchange (X25519 with ML-KEM-768) as the
// baseline, the neighbour configuration (X25519 alone), and a resumed session.
func BenchmarkNeighbourHandshake(b *testing.B) {
	p, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: "127.0.0.1:1"})
	require.NoError(b, err)
	for _, bc := range []struct {
		name   string
		curves []tls.CurveID
		resume bool
	}{{"default-curves", nil, false}, {"neighbour", neighbourCurves, false}, {"neighbour-resumed", neighbourCurves, true}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := p.NeighbourTLS()
			srv.CurvePreferences = bc.curves
			cli := pinnedTLS(p.CertFingerprint(), nil)
			cli.CurvePreferences = bc.curves
			if bc.resume {
				cli.ClientSessionCache = tls.NewLRUClientSessionCache(1)
				cli.ServerName = "neighbour" // the cache's key: net.Pipe has no address
			}
			resumed := 0
			for b.Loop() {
				a, c := net.Pipe()
				done := make(chan error, 1)
				go func() {
					s := tls.Server(a, srv)
					err := s.Handshake()
					if err == nil { // a byte each way: the client reads the session ticket
						_, err = s.Write([]byte{1})
					}
					done <- err
				}()
				tc := tls.Client(c, cli)
				require.NoError(b, tc.Handshake())
				_, err := tc.Read(make([]byte, 1))
				require.NoError(b, err)
				require.NoError(b, <-done)
				if tc.ConnectionState().DidResume {
					resumed++
				}
				a.Close()
				c.Close()
			}
			b.ReportMetric(float64(resumed)/float64(b.N), "resumed/op")
		})
	}
}

// TestNeighbourConnectionsBounded: twelve fetches at once from one neighbour use at most
// neighbourConns connections, and so at most that many TLS handshakes: the others wait for
// a connection rather than dial one more each.
func TestNeighbourConnectionsBounded(t *testing.T) {
	gw := newFakeGateway(12)
	named, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: "127.0.0.1:1"})
	require.NoError(t, err)
	var conns, inflight atomic.Int64
	release := make(chan struct{})
	ns := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		<-release
		for _, s := range gw.window.Segments {
			if r.URL.Path == swarm.NeighbourSegmentPath+s.Digest.String() {
				_, _ = w.Write(gw.data[s.Name])
				return
			}
		}
		http.NotFound(w, r)
	}))
	ns.TLS = named.NeighbourTLS()
	ns.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ns.StartTLS()
	t.Cleanup(ns.Close)
	gw.setSources(swarm.Source{ID: strings.Repeat("c", 32), Addr: ns.Listener.Addr().String(), Cert: named.CertFingerprint()})
	p := startProxy(t, gw, func(c *Config) { c.NeighbourBudget = 10 * time.Second })

	var wg sync.WaitGroup
	for _, s := range gw.window.Segments {
		wg.Go(func() {
			resp, _ := httpGet(t, p.player.URL+"/live/tv/"+s.Name+"?CMCD=bl%3D30000")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
	require.Eventually(t, func() bool { return inflight.Load() == neighbourConns }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.LessOrEqual(t, conns.Load(), int64(neighbourConns), "connections to the neighbour")
	assert.Equal(t, int64(12), p.Status().Channels["tv"].SegmentsFromPeers)
}

// TestPullThroughStaysInItsChannel: a neighbour request admitted to one channel makes the
// proxy wait for, and pull through, only segments its member of that channel knows: one
// of another channel it follows is not fetched for it.
func TestPullThroughStaysInItsChannel(t *testing.T) {
	gw := newFakeGateway(2)
	p := startProxy(t, gw, nil)
	d := gw.window.Segments[1].Digest
	require.Eventually(t, func() bool { _, ok := p.member("tv").knownDigest(d); return ok }, 5*time.Second, time.Millisecond)
	p.member("radio") // followed too, and knows nothing of tv's segments

	done, cancel := context.WithCancel(t.Context())
	cancel() // no waiting: what each member knows now
	_, _, ok := p.awaitKnown(done, "radio", d)
	assert.False(t, ok, "another channel's segment")
	m, _, ok := p.awaitKnown(done, "tv", d)
	require.True(t, ok)
	assert.Equal(t, "tv", m.channel)
	assert.Nil(t, p.held(done, "radio", d, 0), "nothing fetched for a neighbour of radio")
}
