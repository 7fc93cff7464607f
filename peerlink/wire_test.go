package peerlink

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// offerFrom returns a real offer SDP and its session: the Link "x" dials "b", and the
// router keeps the offer instead of delivering it. The Dial fails later, by itself.
func offerFrom(t *testing.T) Signal {
	t.Helper()
	got := make(chan Signal, 1)
	r := router{drop: func(_ string, s Signal) bool {
		select {
		case got <- s:
		default:
		}
		return true
	}}
	x := r.newLink(t, "x", func(c *Config) { c.HandshakeTimeout = time.Second })
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = x.Dial(context.Background(), "b")
	}()
	t.Cleanup(func() { <-done })
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no offer made")
		return Signal{}
	}
}

func TestBadSignalsRefused(t *testing.T) {
	offer := offerFrom(t)
	var r router
	b := r.newLink(t, "b", nil)
	session := strings.Repeat("ab", 16)
	cases := []struct {
		name string
		s    Signal
	}{
		{"unknown kind", Signal{Session: session, Kind: "candidate", SDP: offer.SDP}},
		{"short session", Signal{Session: "abc", Kind: KindOffer, SDP: offer.SDP}},
		{"non-hex session", Signal{Session: strings.Repeat("zz", 16), Kind: KindOffer, SDP: offer.SDP}},
		{"empty sdp", Signal{Session: session, Kind: KindOffer}},
		{"oversized sdp", Signal{Session: session, Kind: KindOffer, SDP: offer.SDP + strings.Repeat("a=x\r\n", MaxSDPBytes)}},
		{"garbage sdp", Signal{Session: session, Kind: KindOffer, SDP: "\x00\xffnot sdp at all"}},
		{"answer, unknown session", Signal{Session: session, Kind: KindAnswer, SDP: offer.SDP}},
	}
	for _, c := range cases {
		if err := b.HandleSignal("x", c.s); !errors.Is(err, ErrBadSignal) {
			t.Errorf("%s: %v, want ErrBadSignal", c.name, err)
		}
	}
	if s := b.Stats(); s.Peers != 0 {
		t.Errorf("bad signals made %d peer connections", s.Peers)
	}

	// A remote flooding offers gets at most 2 peer connections pending.
	var accepted int
	for i := range 5 {
		s := offer
		s.Session = strings.Repeat("0", 31) + string(rune('a'+i))
		switch err := b.HandleSignal("x", s); {
		case err == nil:
			accepted++
		case !errors.Is(err, ErrTooManyPeers):
			t.Errorf("offer %d: %v", i, err)
		}
	}
	if err := b.HandleSignal("x", offer); err != nil && !errors.Is(err, ErrTooManyPeers) {
		t.Errorf("offer flood: %v", err)
	}
	if accepted != maxPendingPerRemote || b.Stats().Refused < 3 {
		t.Errorf("offer flood: %d accepted, stats %+v; want %d", accepted, b.Stats(), maxPendingPerRemote)
	}

	// An answer for a live session from another remote is refused.
	var r2 router
	a := r2.newLink(t, "a", func(c *Config) { c.HandshakeTimeout = time.Second })
	sent := make(chan Signal, 1)
	r2.drop = func(_ string, s Signal) bool { sent <- s; return true }
	dialed := make(chan error, 1)
	go func() {
		_, err := a.Dial(t.Context(), "b")
		dialed <- err
	}()
	own := <-sent
	forged := Signal{Session: own.Session, Kind: KindAnswer, SDP: offer.SDP}
	if err := a.HandleSignal("mallory", forged); !errors.Is(err, ErrBadSignal) {
		t.Errorf("answer from the wrong remote: %v", err)
	}
	if err := <-dialed; !errors.Is(err, ErrHandshake) {
		t.Errorf("Dial with only a forged answer: %v", err)
	}
}

// recorder is a UDP socket that keeps a copy of every datagram it sends.
type recorder struct {
	net.PacketConn
	mu   sync.Mutex
	sent bytes.Buffer
	n    int
}

func (r *recorder) WriteTo(b []byte, addr net.Addr) (int, error) {
	r.mu.Lock()
	r.sent.Write(b)
	r.sent.WriteString("\n--datagram--\n") // a marker cannot straddle two datagrams
	r.n++
	r.mu.Unlock()
	return r.PacketConn.WriteTo(b, addr)
}

func listenRecorder(t *testing.T) *recorder {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{PacketConn: pc}
}

// TestWireIsEncrypted captures every UDP datagram both Links send and checks that a
// plaintext marker served over HTTP never appears in them.
func TestWireIsEncrypted(t *testing.T) {
	ra, rb := listenRecorder(t), listenRecorder(t)
	var r router
	a := r.newLink(t, "a", func(c *Config) { c.UDPConn = ra })
	b := r.newLink(t, "b", func(c *Config) { c.UDPConn = rb })
	marker := bytes.Repeat([]byte("RAWFLOW-PLAINTEXT"), 4)[:64]
	body := bytes.Repeat(marker, (512<<10)/len(marker))
	serveHTTP(t, b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	}))
	got := get(t, client(t, a, nil), "http://b/marked")
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes, want the %d served", len(got), len(body))
	}
	for _, rec := range []*recorder{ra, rb} {
		rec.mu.Lock()
		wire, n := rec.sent.Bytes(), rec.n
		if len(wire) < len(body)/2 && rec == rb {
			t.Errorf("only %d bytes in %d datagrams captured from the server side: traffic bypassed the socket", len(wire), n)
		}
		if bytes.Contains(wire, marker) || bytes.Contains(wire, []byte("RAWFLOW-PLAINTEXT")) {
			t.Errorf("plaintext marker found in the %d captured datagrams", n)
		}
		t.Logf("captured %d bytes in %d datagrams", len(wire), n)
		rec.mu.Unlock()
	}
	if a.Stats().PeersUp[TypeHost] != 1 {
		t.Errorf("stats: %+v", a.Stats())
	}
}
