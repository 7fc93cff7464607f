// Package stuntest serves STUN on loopback for tests, as a NAT in front of the client would
// make it look: the same public port for every server (a cone NAT), or a port per server
// (a symmetric one).
package stuntest

import (
	"context"
	"net"
	"testing"

	"github.com/pion/stun/v3"
)

// Serve answers STUN Binding requests on a loopback UDP port until the test ends and
// returns the port. Each answer's XOR-MAPPED-ADDRESS is the sender's address with shift
// added to its port: servers with different shifts see one client at different public
// ports, as behind a symmetric NAT.
func Serve(t testing.TB, shift int) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp4", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("stuntest: %v", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.Close() })
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		defer stop()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			udp, ok := from.(*net.UDPAddr)
			if !ok || req.Decode() != nil || req.Type != stun.BindingRequest {
				continue
			}
			res, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: udp.IP, Port: udp.Port + shift}, stun.Fingerprint)
			if err == nil {
				_, _ = pc.WriteTo(res.Raw, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
