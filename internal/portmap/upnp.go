package portmap

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
	"github.com/jackpal/gateway"
)

// igd is the part of a UPnP Internet Gateway Device's WAN connection service a mapping
// needs: WANIPConnection versions 1 and 2 and WANPPPConnection version 1 all have it.
type igd interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	// LocalAddr is this machine's address on the LAN the service was found on.
	LocalAddr() net.IP
	GetServiceClient() *goupnp.ServiceClient
}

// anyPort is IGD version 2's AddAnyPortMapping: the router picks a free external port
// when the one asked for is taken.
type anyPort interface {
	AddAnyPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, lease uint32) (uint16, error)
}

// upnp is a router's WAN connection service, found by an SSDP search of the LAN.
type upnp struct {
	c     igd
	local string // this machine's address on the router's LAN, the mapping's internal client
}

// discovered is what one search found (its errors are those of devices that did not
// answer as an IGD should: passed over).
func discovered[C igd](cs []C, _ []error, _ error) []igd {
	out := make([]igd, 0, len(cs))
	for _, c := range cs {
		out = append(out, c)
	}
	return out
}

// findUPnP searches the LAN for a WAN connection service (IGD 2 first, then 1, then PPP),
// the three searches at once, within timeout.
func findUPnP(ctx context.Context, timeout time.Duration) (router, error) {
	setLANClient()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	searches := []func(context.Context) []igd{
		func(ctx context.Context) []igd {
			return discovered(internetgateway2.NewWANIPConnection2ClientsCtx(ctx))
		},
		func(ctx context.Context) []igd {
			return discovered(internetgateway2.NewWANIPConnection1ClientsCtx(ctx))
		},
		func(ctx context.Context) []igd {
			return discovered(internetgateway2.NewWANPPPConnection1ClientsCtx(ctx))
		},
	}
	results := make([]chan []igd, len(searches))
	for i, search := range searches {
		results[i] = make(chan []igd, 1)
		go func() { results[i] <- search(ctx) }()
	}
	// The first service found, the default gateway's if it is among them: any device on the
	// LAN may answer a search, and the router in front of this machine is the one to ask.
	// (A device that is not cannot point the swarm elsewhere: the tracker takes a public
	// address only from the host it sees it from; see Proxy.advertiseAddr.)
	gw, _ := gateway.DiscoverGateway()
	var chosen *upnp
	for _, ch := range results { // every search ends with ctx: none outlives findUPnP
		for _, c := range <-ch {
			local := c.LocalAddr()
			if local == nil || local.IsUnspecified() {
				continue
			}
			if chosen == nil || (gw != nil && !isHost(chosen.c, gw) && isHost(c, gw)) {
				chosen = &upnp{c: c, local: local.String()}
			}
		}
	}
	if chosen == nil {
		return nil, fmt.Errorf("%s: no Internet Gateway Device answered on the LAN within %s", UPnP, timeout)
	}
	if sc := chosen.c.GetServiceClient(); sc != nil && sc.SOAPClient != nil {
		sc.SOAPClient.HTTPClient = *lanClient // on the LAN only, bounded (lanhttp.go)
	}
	return chosen, nil
}

// isHost reports whether the service c was found at address ip.
func isHost(c igd, ip net.IP) bool {
	loc := c.GetServiceClient().Location
	return loc != nil && net.ParseIP(loc.Hostname()).Equal(ip)
}

// add asks for the external port want, leased; when the router refuses it, for any port (IGD
// 2), then, if the router takes only permanent mappings (error 725), permanently, else for a
// random port, leased.
func (r *upnp) add(ctx context.Context, port, want uint16, lifetime time.Duration, description string) (Mapping, error) {
	lease := uint32(lifetime / time.Second)
	ext, err := want, r.c.AddPortMappingCtx(ctx, "", want, "TCP", port, r.local, true, description, lease)
	if err != nil {
		if a, ok := r.c.(anyPort); ok {
			ext, err = a.AddAnyPortMappingCtx(ctx, "", want, "TCP", port, r.local, true, description, lease)
		}
	}
	if err != nil && ctx.Err() == nil && upnpCode(err) == errOnlyPermanentLeases {
		lease = 0
		err = r.c.AddPortMappingCtx(ctx, "", want, "TCP", port, r.local, true, description, 0)
	}
	if err != nil && ctx.Err() == nil { // the port is taken (error 718): another one
		ext = uint16(1024 + rand.IntN(65535-1024))
		err = r.c.AddPortMappingCtx(ctx, "", ext, "TCP", port, r.local, true, description, lease)
	}
	if err != nil {
		return Mapping{}, fmt.Errorf("%s: map port %d: %w", UPnP, port, err)
	}
	m := Mapping{Method: UPnP, Lifetime: time.Duration(lease) * time.Second, internal: port}
	m.External = netip.AddrPortFrom(netip.IPv4Unspecified(), ext) // for the removal below
	s, err := r.c.GetExternalIPAddressCtx(ctx)
	if err == nil {
		var addr netip.Addr
		if addr, err = netip.ParseAddr(s); err == nil {
			m.External = netip.AddrPortFrom(addr.Unmap(), ext)
			return m, nil
		}
	}
	return Mapping{}, errors.Join(fmt.Errorf("%s: external address %q: %w", UPnP, s, err), r.remove(ctx, m))
}

// errOnlyPermanentLeases is the UPnP error of a router that takes no lease but 0.
const errOnlyPermanentLeases = 725

// upnpCode returns the UPnP error code a SOAP fault carries (0: none).
func upnpCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return f.Detail.UPnPError.Errorcode
	}
	return 0
}

// remove deletes m, within a second of its own when ctx is spent (a mapping made as the
// time ran out must not be left behind).
func (r *upnp) remove(ctx context.Context, m Mapping) error {
	ctx, cancel := removalContext(ctx)
	defer cancel()
	return r.c.DeletePortMappingCtx(ctx, "", m.External.Port(), "TCP")
}
