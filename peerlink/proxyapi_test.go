package peerlink

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// TestSetICEServersAfterNew: servers set after New (a proxy learns them from its gateway's
// hello) are the ones later peer connections gather from; Connected follows the link.
func TestSetICEServersAfterNew(t *testing.T) {
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
	a, _ := r.newLink(t, "a", nil), r.newLink(t, "b", nil)
	if err := a.SetICEServers([]ICEServer{{URLs: []string{"stun:"}}, {URLs: []string{"stun:" + addr.String()}}}); err == nil {
		t.Error("SetICEServers took a malformed URL without a word")
	}
	if a.Connected("b") {
		t.Error("connected before any dial")
	}
	conn, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !a.Connected("b") {
		t.Error("not connected after a dial")
	}
	if offer := <-offers; !strings.Contains(offer.SDP, "typ srflx") {
		t.Errorf("offer has no srflx candidate from the servers set after New:\n%s", offer.SDP)
	}
}

// TestSTUNRepliesFromTheAddressAsked: a STUN server bound to every address answers from the
// address a request came to (a NAT drops a reply from any other). The client asks
// 127.0.0.2 from 127.0.0.1 on a connected socket, which takes replies from 127.0.0.2 only.
func TestSTUNRepliesFromTheAddressAsked(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ServeSTUN(ctx, pc) }()
	defer func() {
		cancel()
		if serr := <-done; serr != nil {
			t.Errorf("ServeSTUN: %v", serr)
		}
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	buf := make([]byte, 1500)
	for try := range 3 { // UDP: a request may be lost
		if _, err := c.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Logf("try %d: %v", try, err)
			continue
		}
		res := &stun.Message{Raw: buf[:n]}
		var xor stun.XORMappedAddress
		if err := res.Decode(); err != nil || xor.GetFrom(res) != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		if xor.IP.String() != "127.0.0.1" {
			t.Errorf("mapped address %s, want 127.0.0.1", xor.IP)
		}
		return
	}
	t.Fatal("no reply from 127.0.0.2: the server answered from another address")
}
