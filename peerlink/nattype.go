package peerlink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// Mapping test (RFC 5780 §4.3, its first two steps). A NAT that gives a local UDP port one
// public address and port whatever the destination (endpoint-independent mapping, "cone")
// lets ICE through to peers behind other NATs; one that gives each destination a port of
// its own ("symmetric") does not, without TURN: the port a peer learns from STUN is not the
// one its packets to another peer leave from.
const (
	// mappingWait bounds the whole test.
	mappingWait = 2 * time.Second
	// mappingRetry is how long a request waits for its answer before it is sent again.
	mappingRetry = 250 * time.Millisecond
)

// ErrNoMapping is the error of a mapping test a STUN server did not answer in time.
var ErrNoMapping = errors.New("STUN: no answer")

// SymmetricNAT sends STUN Binding requests from one UDP socket to host:port and
// host:altPort (two ports of one STUN server, such as the gateway's) and reports whether
// they saw it from different public addresses or ports: a symmetric NAT. It returns
// ErrNoMapping when either did not answer within two seconds (or ctx's end), resending
// every quarter second.
func SymmetricNAT(ctx context.Context, host string, port, altPort int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, mappingWait)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return false, fmt.Errorf("STUN host %q: %w", host, errors.Join(err, ErrNoMapping))
	}
	ip := ips[0].Unmap()
	servers := []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port)), netip.AddrPortFrom(ip, uint16(altPort))}
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	reqs := make([]*stun.Message, len(servers))
	for i := range reqs {
		reqs[i] = stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	}
	var seen [2]netip.AddrPort
	answered := 0
	buf := make([]byte, maxSTUNPacket)
	for answered < len(servers) {
		for i, s := range servers {
			if !seen[i].IsValid() {
				_, _ = conn.WriteToUDPAddrPort(reqs[i].Raw, s)
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(mappingRetry))
		for answered < len(servers) {
			n, from, rerr := conn.ReadFromUDPAddrPort(buf)
			if ctx.Err() != nil {
				return false, fmt.Errorf("STUN %s, port %d: %w", ip, altPort, ErrNoMapping)
			}
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				break // send the unanswered again
			}
			if rerr != nil {
				return false, rerr
			}
			i, mapped := answerOf(buf[:n], reqs, servers, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
			if i >= 0 && !seen[i].IsValid() && mapped.IsValid() {
				seen[i] = mapped
				answered++
			}
		}
	}
	return seen[0] != seen[1], nil
}

// answerOf returns which request b answers (the server it came from and the transaction
// it names) and the public address it reports (its XOR-MAPPED-ADDRESS), or -1.
func answerOf(b []byte, reqs []*stun.Message, servers []netip.AddrPort, from netip.AddrPort) (int, netip.AddrPort) {
	if !stun.IsMessage(b) {
		return -1, netip.AddrPort{}
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if m.Decode() != nil || m.Type != stun.BindingSuccess {
		return -1, netip.AddrPort{}
	}
	for i, r := range reqs {
		if r.TransactionID != m.TransactionID || servers[i] != from {
			continue
		}
		var xa stun.XORMappedAddress
		if xa.GetFrom(m) != nil || xa.Port <= 0 || xa.Port > 65535 {
			return -1, netip.AddrPort{}
		}
		a, ok := netip.AddrFromSlice(xa.IP)
		if !ok {
			return -1, netip.AddrPort{}
		}
		return i, netip.AddrPortFrom(a.Unmap(), uint16(xa.Port))
	}
	return -1, netip.AddrPort{}
}
