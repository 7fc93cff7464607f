package swarm

import (
	"fmt"
	"net/netip"
)

// AddrPolicy says which neighbour addresses a swarm admits: the tracker refuses a peer
// that advertises any other, and a proxy refuses to dial one (the gateway announces its
// policy in Hello). Whatever the policy, a neighbour is never an unspecified, multicast,
// link-local (169.254.0.0/16 holds cloud metadata services; fe80::/10) or otherwise
// special address: honest proxies must not be aimed at the viewer's machine, LAN or
// cloud.
type AddrPolicy int

// Address policies, from the strictest.
const (
	// AddrPublic admits public unicast addresses only: the internet (the default).
	AddrPublic AddrPolicy = iota
	// AddrPrivate also admits private ranges (RFC 1918, RFC 6598 shared address space,
	// IPv6 unique local): deployments whose viewers share a LAN or site.
	AddrPrivate
	// AddrLoopback also admits loopback: every proxy on one machine (the demo, tests).
	AddrLoopback
)

var addrPolicyNames = [...]string{"public", "private", "loopback"}

// String names the policy as the --peer-addrs flag and Hello spell it.
func (p AddrPolicy) String() string {
	if p < 0 || int(p) >= len(addrPolicyNames) {
		return fmt.Sprintf("AddrPolicy(%d)", int(p))
	}
	return addrPolicyNames[p]
}

// ParseAddrPolicy reads a policy's name; "" is AddrPublic.
func ParseAddrPolicy(s string) (AddrPolicy, error) {
	if s == "" {
		return AddrPublic, nil
	}
	for i, n := range addrPolicyNames {
		if s == n {
			return AddrPolicy(i), nil
		}
	}
	return AddrPublic, fmt.Errorf("address policy %q: want public, private or loopback", s)
}

var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 (carrier-grade NAT)
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	broadcast   = netip.MustParseAddr("255.255.255.255")
)

// Allows reports whether a neighbour at a may be dialled under the policy.
func (p AddrPolicy) Allows(a netip.Addr) bool {
	a = a.Unmap()
	switch {
	case !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() ||
		a.IsInterfaceLocalMulticast() || thisNetwork.Contains(a) || a == broadcast:
		return false
	case a.IsLoopback():
		return p >= AddrLoopback
	case a.IsPrivate() || sharedSpace.Contains(a):
		return p >= AddrPrivate
	}
	return a.IsGlobalUnicast()
}

// AllowsAddrPort is Allows for a host:port string; a malformed one is refused.
func (p AddrPolicy) AllowsAddrPort(hostport string) bool {
	ap, err := netip.ParseAddrPort(hostport)
	return err == nil && ap.Port() != 0 && p.Allows(ap.Addr())
}
