package peerlink

import (
	"context"
	"errors"
	"net"

	"github.com/pion/stun/v3"
)

// maxSTUNPacket bounds a STUN request read; larger datagrams are truncated and dropped.
const maxSTUNPacket = 1500

// ServeSTUN answers STUN Binding requests arriving on pc with the sender's address
// (XOR-MAPPED-ADDRESS), so a peer behind a NAT learns its public address. Other packets
// are dropped. It keeps no per-client state and returns when ctx ends (nil) or pc fails
// (the error); it closes pc when ctx ends.
func ServeSTUN(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = pc.Close() })
	defer stop()
	buf := make([]byte, maxSTUNPacket)
	req, res := new(stun.Message), new(stun.Message)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		udp, ok := from.(*net.UDPAddr)
		if !ok || n >= len(buf) || !stun.IsMessage(buf[:n]) {
			continue
		}
		req.Reset()
		req.Raw = append(req.Raw[:0], buf[:n]...)
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		res.Reset()
		err = res.Build(
			stun.NewTransactionIDSetter(req.TransactionID),
			stun.BindingSuccess,
			&stun.XORMappedAddress{IP: udp.IP, Port: udp.Port},
			stun.Fingerprint,
		)
		if err != nil {
			continue
		}
		_, _ = pc.WriteTo(res.Raw, from) // a lost reply is retried by the client
	}
}
