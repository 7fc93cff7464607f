package peerassist

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"github.com/rawflow/rawflow/internal/portmap"
	"github.com/rawflow/rawflow/swarm"
)

// Port mapping. A proxy whose neighbour port is bound on a private or unspecified address
// may sit behind a home router; many offer to forward a port on request (NAT-PMP, UPnP
// IGD). With such a forwarding the proxy advertises the router's public address and port
// (advertiseAddr), and neighbours anywhere dial it over TCP and TLS as on a LAN:
// no WebRTC set-up, and a site behind a symmetric NAT, which ICE cannot cross without a
// relay, serves its neighbours. Without one (no router answers, or the router is behind
// another NAT and its "public" address is not) nothing changes: WebRTC as before. The
// mapping is renewed while the proxy runs and removed when it stops.

// behindNAT reports whether a neighbour port bound on ip may be behind a NAT: bound on
// every address, or on a private one (what swarm.AddrPrivate admits and AddrPublic does not:
// RFC 1918, RFC 6598, IPv6 ULA).
func behindNAT(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	a = a.Unmap()
	return ok && (a.IsUnspecified() || swarm.AddrPrivate.Allows(a) && !swarm.AddrPublic.Allows(a))
}

// keepPortMapping has the router forward port until ctx ends (portmap.Keep), publishing the
// mapping for advertiseAddr and Status.
func (p *Proxy) keepPortMapping(ctx context.Context, port uint16) {
	portmap.Keep(ctx, portmap.Config{Port: port, Logger: p.log}, p.setPortMapping)
	p.setPortMapping(portmap.Mapping{})
}

// setPortMapping publishes the router's forwarding (m.Valid() false: none); the event
// streams subscribe again with the address it gives (stream.go).
func (p *Proxy) setPortMapping(m portmap.Mapping) {
	if !m.Valid() {
		p.mapping.Store(nil)
		return
	}
	p.mapping.Store(&m)
}

// advertiseAddr is the neighbour address the proxy subscribes with: while the router
// forwards a port and the gateway's address policy is public (a gateway that admits private
// addresses has its viewers on its LAN, where the bound address serves), the router's public
// address and port, else Config.AdvertiseAddr. The tracker takes a public address only from
// the host whose requests come from it: a proxy that takes WebRTC is then reached over its
// links alone (the forwarding unused: the gateway sees it at another address, over IPv6
// say), so it names the router's address; one that does not would be refused its stream,
// so it leaves the host to the gateway.
func (p *Proxy) advertiseAddr() string {
	m := p.mapping.Load()
	if m == nil || swarm.AddrPolicy(p.policy.Load()) != swarm.AddrPublic {
		return p.cfg.AdvertiseAddr
	}
	port := strconv.Itoa(int(m.External.Port()))
	if p.link != nil {
		return net.JoinHostPort(m.External.Addr().String(), port)
	}
	return net.JoinHostPort("", port)
}
