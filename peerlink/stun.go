package peerlink

import (
	"context"
	"errors"
	"net"

	"github.com/pion/stun/v3"
	"golang.org/x/net/ipv4"
)

// maxSTUNPacket bounds a STUN request read; larger datagrams are truncated and dropped.
const maxSTUNPacket = 1500

// ServeSTUN answers STUN Binding requests arriving on pc with the sender's address
// (XOR-MAPPED-ADDRESS), so a peer behind a NAT learns its public address. Other packets
// are dropped. It keeps no per-client state and returns when ctx ends (nil) or pc fails
// (the error); it closes pc when ctx ends.
//
// On an IPv4 UDP socket bound to every address of a host with several, each reply leaves
// from the address its request came to: a reply from another of the host's addresses
// (the one the kernel's route picks) is dropped by the NAT that let the request out, which
// expects it from where the request went.
func ServeSTUN(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = pc.Close() })
	defer stop()
	read, write := pc.ReadFrom, func(b []byte, _ net.IP, to net.Addr) { _, _ = pc.WriteTo(b, to) }
	if uc, ok := pc.(*net.UDPConn); ok {
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
			p4 := ipv4.NewPacketConn(uc)
			if p4.SetControlMessage(ipv4.FlagDst, true) == nil {
				var dst net.IP
				read = func(b []byte) (int, net.Addr, error) {
					n, cm, from, err := p4.ReadFrom(b)
					dst = nil
					if cm != nil {
						dst = cm.Dst
					}
					return n, from, err
				}
				write = func(b []byte, _ net.IP, to net.Addr) {
					var cm *ipv4.ControlMessage
					if dst != nil && !dst.IsUnspecified() {
						cm = &ipv4.ControlMessage{Src: dst}
					}
					_, _ = p4.WriteTo(b, cm, to)
				}
			}
		}
	}
	buf := make([]byte, maxSTUNPacket)
	req, res := new(stun.Message), new(stun.Message)
	for {
		n, from, err := read(buf)
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
		write(res.Raw, nil, from) // a lost reply is retried by the client
	}
}
