package peerlink

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func startSTUN(t *testing.T) (addr *net.UDPAddr, stop func() error) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeSTUN(ctx, pc) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("ServeSTUN did not end with its context")
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })
	return pc.LocalAddr().(*net.UDPAddr), stop
}

func TestServeSTUNReflectsAddress(t *testing.T) {
	addr, stop := startSTUN(t)
	conn, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := stun.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got stun.XORMappedAddress
	var doErr error
	err = c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
		if doErr = e.Error; doErr == nil {
			doErr = got.GetFrom(e.Message)
		}
	})
	if err != nil || doErr != nil {
		t.Fatalf("binding request: %v, %v", err, doErr)
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	if !got.IP.Equal(local.IP) || got.Port != local.Port {
		t.Errorf("XOR-MAPPED-ADDRESS %s, want the client's %s", got.String(), local)
	}
	if err := stop(); err != nil {
		t.Errorf("ServeSTUN after cancel: %v", err)
	}
}

func TestServeSTUNIgnoresGarbage(t *testing.T) {
	addr, _ := startSTUN(t)
	conn, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	notBinding := stun.MustBuild(stun.TransactionID, stun.BindingSuccess)
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		make([]byte, 3000), // larger than a request may be
		notBinding.Raw,
		notBinding.Raw[:22], // truncated
	} {
		if _, err = conn.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	// Datagrams on loopback arrive in order and the server reads them in order: the first
	// reply is to the valid request sent last, or the junk was answered.
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err = conn.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil {
		t.Fatal(err)
	}
	if res.Type != stun.BindingSuccess || res.TransactionID != req.TransactionID {
		t.Errorf("first reply %v for transaction %x, want a success for %x", res.Type, res.TransactionID, req.TransactionID)
	}
}

// TestICEGathersFromServeSTUN: pion's ICE agent, given ServeSTUN as its STUN server,
// learns a server-reflexive candidate from it (on loopback, the host address itself).
func TestICEGathersFromServeSTUN(t *testing.T) {
	addr, _ := startSTUN(t)
	offers := make(chan Signal, 1)
	r := router{drop: func(_ string, s Signal) bool {
		if s.Kind == KindOffer {
			select {
			case offers <- s:
			default:
			}
		}
		return false
	}}
	withSTUN := func(c *Config) { c.ICEServers = []ICEServer{{URLs: []string{"stun:" + addr.String()}}} }
	a, _ := r.newLink(t, "a", withSTUN), r.newLink(t, "b", withSTUN)
	conn, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if offer := <-offers; !strings.Contains(offer.SDP, "typ srflx") {
		t.Errorf("offer has no srflx candidate:\n%s", offer.SDP)
	}
	if _, err := New(Config{Send: r.send("x"), ICEServers: []ICEServer{{URLs: []string{"stun:"}}}}); err == nil {
		t.Error("New accepted a malformed ICE server URL")
	}
}
