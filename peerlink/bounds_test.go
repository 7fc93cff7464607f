package peerlink

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestAcceptQueueFullClosesStreams: streams past a full Accept queue are closed and
// counted; the queued ones wait for Accept.
func TestAcceptQueueFullClosesStreams(t *testing.T) {
	var r router
	a, b := r.newLink(t, "a", nil), r.newLink(t, "b", nil)
	const extra = 3
	conns := make([]net.Conn, 0, acceptQueue+extra)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range acceptQueue + extra {
		c, err := a.Dial(t.Context(), "b")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	eof := make(chan struct{}, len(conns))
	for _, c := range conns {
		go func() {
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
				eof <- struct{}{}
			}
		}()
	}
	for range extra {
		select {
		case <-eof:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d streams dropped", b.Stats().AcceptDropped)
		}
	}
	if n := b.Stats().AcceptDropped; n != extra {
		t.Errorf("AcceptDropped = %d, want %d", n, extra)
	}
	for range acceptQueue {
		c, err := b.Listener().Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// TestOffersPastMaxPeersIgnored: a Link at MaxPeers answers no further offer, and the
// dialer's Dial fails within its handshake timeout.
func TestOffersPastMaxPeersIgnored(t *testing.T) {
	var r router
	r.newLink(t, "b", func(c *Config) { c.MaxPeers = 1 })
	a := r.newLink(t, "a", nil)
	c := r.newLink(t, "c", func(c *Config) { c.HandshakeTimeout = 500 * time.Millisecond })
	conn, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Dial(t.Context(), "b"); !errors.Is(err, ErrHandshake) {
		t.Errorf("Dial to a Link at MaxPeers: %v, want ErrHandshake", err)
	}
	r.mu.Lock()
	b := r.links["b"]
	r.mu.Unlock()
	if s := b.Stats(); s.Refused != 1 || s.Peers != 1 {
		t.Errorf("stats of the full Link: %+v", s)
	}
}

// TestCloseEndsEverything: after a real exchange, Close of both Links leaves none of their
// goroutines, and their streams and listeners report closed.
func TestCloseEndsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var r router
	a, b := r.newLink(t, "a", nil), r.newLink(t, "b", nil)
	ac, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := b.Listener().Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err = ac.Write(pattern(100 << 10)); err != nil {
		t.Fatal(err)
	}
	if _, err = io.ReadFull(bc, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if err = a.Close(); err != nil {
		t.Fatal(err)
	}
	if err = b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err = ac.Read(make([]byte, 1)); err == nil {
		t.Error("read on a stream of a closed Link succeeded")
	}
	if _, err = b.Listener().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	ac.Close()
	bc.Close()
}
