package portmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/jackpal/gateway"
	natpmp "github.com/jackpal/go-nat-pmp"
)

// natPMP is a router that answers NAT-PMP (RFC 6886) on the default gateway's UDP port 5351,
// as PCP routers (RFC 6887) that keep NAT-PMP for older clients do. A router that speaks PCP
// alone (version 2) is not asked.
type natPMP struct {
	c        *natpmp.Client
	gw       net.IP
	external netip.Addr
}

// findNATPMP asks the default gateway for its external address: a router that answers
// maps ports.
func findNATPMP(_ context.Context, timeout time.Duration) (router, error) {
	gw, err := gateway.DiscoverGateway()
	if err != nil {
		return nil, fmt.Errorf("%s: no default gateway: %w", NATPMP, err)
	}
	return natPMPAt(gw, timeout)
}

// natPMPAt is the NAT-PMP router at gw, if it answers within timeout.
func natPMPAt(gw net.IP, timeout time.Duration) (router, error) {
	c := natpmp.NewClientWithTimeout(gw, timeout)
	res, err := c.GetExternalAddress()
	if err != nil {
		return nil, fmt.Errorf("%s: gateway %s: %w", NATPMP, gw, err)
	}
	return &natPMP{c: c, gw: gw, external: netip.AddrFrom4(res.ExternalIPAddress)}, nil
}

// add asks for the external port want; the router may give another. The client bounds
// each call by the timeout it was made with (it takes no context).
func (r *natPMP) add(_ context.Context, port, want uint16, lifetime time.Duration, _ string) (Mapping, error) {
	res, err := r.c.AddPortMapping("tcp", int(port), int(want), int(lifetime/time.Second))
	if err != nil {
		return Mapping{}, fmt.Errorf("%s: map port %d: %w", NATPMP, port, err)
	}
	if res.PortMappingLifetimeInSeconds == 0 { // a lifetime of 0 is a deletion
		return Mapping{}, fmt.Errorf("%s: map port %d: the router granted no lifetime", NATPMP, port)
	}
	// The external address may have changed since the router was found (a new lease from
	// the ISP): ask again.
	if ext, err := r.c.GetExternalAddress(); err == nil {
		r.external = netip.AddrFrom4(ext.ExternalIPAddress)
	}
	return Mapping{External: netip.AddrPortFrom(r.external, res.MappedExternalPort), Method: NATPMP,
		Lifetime: time.Duration(res.PortMappingLifetimeInSeconds) * time.Second, internal: port}, nil
}

// remove asks for a lifetime of 0, which deletes the mapping of the internal port, within
// removalTimeout (the client takes no context).
func (r *natPMP) remove(_ context.Context, m Mapping) error {
	_, err := natpmp.NewClientWithTimeout(r.gw, removalTimeout).AddPortMapping("tcp", int(m.internal), 0, 0)
	return err
}
