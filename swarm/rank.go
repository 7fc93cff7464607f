package swarm

import (
	"net"
	"net/netip"
)

// Locality tiers, best first. Rank orders holders by tier, then by state.
const (
	tierGroup   = iota // same non-empty Group as the asker
	tierIP             // same PublicIP as the asker
	tierNetwork        // same IPv4 /24 or IPv6 /64 as the asker
	tierOther          // anywhere else
	numTiers
)

// Rank returns up to limit of holders in the order the asker should try them: nearest
// locality tier first, within a tier holders that have the segment before those still
// fetching it, and within each such bucket a random order drawn with shuffle (nil shuffle
// keeps the input order, for tests). The asker itself and leech peers are dropped. limit
// is clamped to 1..MaxLookupLimit. Rank is pure: holders is not modified.
func Rank(asker Peer, holders []Holder, limit int, shuffle func(n int, swap func(i, j int))) []Holder {
	limit = min(max(limit, 1), MaxLookupLimit)
	askerNet := networkOf(asker)
	var buckets [numTiers * 2][]Holder
	for _, h := range holders {
		if h.ID == asker.ID || h.Leech {
			continue
		}
		b := tierOf(asker, askerNet, h.Peer)*2 + stateOrder(h.State)
		buckets[b] = append(buckets[b], h)
	}
	out := make([]Holder, 0, min(limit, len(holders)))
	for _, b := range buckets {
		if shuffle != nil && len(b) > 1 {
			shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
		}
		out = append(out, b[:min(len(b), limit-len(out))]...)
		if len(out) == limit {
			break
		}
	}
	return out
}

// tierOf returns the locality tier of p as seen from asker, whose network is askerNet.
func tierOf(asker Peer, askerNet netip.Prefix, p Peer) int {
	switch {
	case asker.Group != "" && p.Group == asker.Group:
		return tierGroup
	case asker.PublicIP != "" && p.PublicIP == asker.PublicIP:
		return tierIP
	case askerNet.IsValid() && networkOf(p) == askerNet:
		return tierNetwork
	default:
		return tierOther
	}
}

// stateOrder puts StateHave before every other state.
func stateOrder(s HolderState) int {
	if s == StateHave {
		return 0
	}
	return 1
}

// networkOf returns the /24 (IPv4) or /64 (IPv6) around the host of p.Addr, or around
// p.PublicIP when Addr has no usable host. The zero Prefix means unknown.
func networkOf(p Peer) netip.Prefix {
	ip, ok := parseIP(hostOf(p.Addr))
	if !ok {
		ip, ok = parseIP(p.PublicIP)
	}
	if !ok {
		return netip.Prefix{}
	}
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	pfx, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return pfx
}

// hostOf returns the host part of a host:port address, or "" when there is none.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return host
}

// parseIP parses s as an IP address, unmapping IPv4-in-IPv6 and dropping any zone.
// The unspecified address counts as no address.
func parseIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}
