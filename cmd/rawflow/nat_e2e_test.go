//go:build e2e && linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/loadtest"
	"github.com/rawflow/rawflow/swarm"
	"github.com/rawflow/rawflow/web"
)

// natSite is one home site of TestNATSites: a NAT router namespace and the site's own.
type natSite struct {
	name      string // A, B, C
	symmetric bool   // MASQUERADE --random-fully: a new public port per destination
	router    string // namespace names
	site      string
	public    string // the router's address on the internet
	host      string // the viewers' address in the site
}

// TestNATSites is the short form of bench/nat.sh (issue 15): a gateway on an "internet"
// namespace (203.0.113.2, the default --peer-addrs public) and three sites of three viewers,
// each behind its own NAT router namespace: A and B endpoint-independent mapping (iptables
// MASQUERADE, "cone"), C symmetric (MASQUERADE --random-fully); each router lets in only
// replies to flows its site opened. Every viewer must play without a stall, the symmetric
// site's too, and nothing in a site may be reachable from outside it. The peer bytes that
// cross sites are counted on the routers (iptables counters by the far end's public address)
// and logged; that the two cone sites exchange segments directly is asserted only once the
// gateway has a STUN server (--stun-listen in `rawflow gateway -h`): before it, proxies
// behind NATs cannot reach each other, and the tracker refuses their private addresses.
//
// Namespaces are named after the process and a counter (netLab), so the test runs in
// parallel with itself and others; the addresses live inside its own namespaces.
func TestNATSites(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("NAT sites: not in -short")
	}
	lab := newNetLab(t)
	bin := buildRawflow(t)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)

	const (
		gwIP     = "203.0.113.2"
		viewers  = 3
		duration = 40 * time.Second
	)
	inet := lab.internet(gwIP)

	sites := []*natSite{{name: "A"}, {name: "B"}, {name: "C", symmetric: true}}
	for i, s := range sites {
		n := i + 1
		s.public, s.host = fmt.Sprintf("198.51.100.%d", 4*n-2), fmt.Sprintf("192.168.%d.2", n)
		lab.homeSite(inet, s, fmt.Sprintf("198.51.100.%d", 4*n-3))
		// The site's own: what its proxies send each other stays on lo.
		lab.iptables(s.site, "-A", "OUTPUT", "-o", "lo", "-s", s.host, "-d", s.host, "-m", "comment", "--comment", "in-site")
	}
	// Counters (rules without a target): what each router forwards to and from the others.
	for _, s := range sites {
		for _, o := range sites {
			if o == s {
				continue
			}
			lab.iptables(s.router, "-A", "NATACCT", "-i", "lan0", "-o", "wan0", "-d", o.public, "-m", "comment", "--comment", "to-site"+o.name)
			lab.iptables(s.router, "-A", "NATACCT", "-i", "wan0", "-o", "lan0", "-s", o.public,
				"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-m", "comment", "--comment", "from-site"+o.name)
		}
		lab.iptables(s.router, "-A", "NATACCT", "-i", "wan0", "-o", "lan0", "-s", gwIP, "-m", "comment", "--comment", "from-gateway")
	}

	// No viewer reachable from outside its site: a listener on each site's address answers
	// inside the site, and connects from the internet and from another site, to the site's
	// address and to its router's public address, all fail.
	for i, s := range sites {
		ln := lab.listen(s.site, s.host+":0")
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		c, err := lab.dial(s.site, s.host+":"+port, 2*time.Second)
		require.NoError(t, err, "site %s: its own listener", s.name)
		c.Close()
		other := sites[(i+1)%len(sites)]
		var wg sync.WaitGroup
		for _, from := range []string{inet, other.site} {
			for _, to := range []string{s.host, s.public} {
				wg.Go(func() {
					c, err := lab.dial(from, to+":"+port, 1500*time.Millisecond)
					if err == nil {
						c.Close()
					}
					assert.Error(t, err, "site %s: a connect from %s to %s:%s got through", s.name, from, to, port)
				})
			}
		}
		wg.Wait()
	}
	if t.Failed() {
		return
	}
	t.Log("no site reachable from outside it: connects from the internet and from another site, to a site's address and to its router's, all fail")

	for _, s := range sites { // what the checks above sent is not the run's
		lab.iptables(s.router, "-Z")
		lab.iptables(s.site, "-Z")
	}

	help, _ := exec.Command(bin, "gateway", "-h").CombinedOutput()
	stun := strings.Contains(string(help), "-stun-listen")

	gwURL, inetHTTP := lab.startGateway(ctx, inet, bin, gwIP)

	// The three sites' swarms at once.
	reports := make([]loadtest.Report, len(sites))
	var wg sync.WaitGroup
	for i, s := range sites {
		var stdout procOutput
		p := lab.start(ctx, &stdout, s.site, "swarm "+s.name, bin, "swarm", "--gateway", gwURL, "--channel", "tv",
			"--viewers", fmt.Sprint(viewers), "--direct", "0", "--peer-host", s.host,
			"--duration", duration.String(), "--json")
		wg.Go(func() { reports[i] = waitReport(t, p, &stdout, "site "+s.name, duration) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	cross := map[string]int64{} // "A>B": IP bytes forwarded from site A to site B, at A's router
	for i, s := range sites {
		r := reports[i]
		b, p := lab.counters(s.router, "NATACCT")
		_, fp := lab.counters(s.router, "FORWARD")
		_, ip := lab.counters(s.router, "INPUT")
		in, _ := lab.counters(s.site, "OUTPUT")
		for _, o := range sites {
			if o != s {
				cross[s.name+">"+o.name] = b["to-site"+o.name]
			}
		}
		t.Logf("site %s (%s NAT): %d viewers, offload %.3f, %.2f gateway fetches per segment, %d stalls, %d not started, join p50 %.0f ms;"+
			" segment bytes from peers %d, from the gateway %d (report); IP bytes: in-site %d, from the other sites %d, from the gateway %d (%d packets);"+
			" packets from outside blocked %d",
			s.name, map[bool]string{false: "cone", true: "symmetric"}[s.symmetric], r.Viewers, r.Offload, r.GatewayFetchesSeg, r.Stalls,
			r.NotStarted, r.JoinP50MS, r.BytesFromPeers, r.BytesFromGateway, in["in-site"], b["from-site"+sites[(i+1)%3].name]+b["from-site"+sites[(i+2)%3].name],
			b["from-gateway"], p["from-gateway"], fp["blocked-forward"]+ip["blocked-input"])
		assert.Equal(t, viewers, r.Viewers, "site %s: viewers playing at the end", s.name)
		assert.Zero(t, r.NotStarted, "site %s: viewers that never started", s.name)
		assert.Zero(t, r.Stalls, "site %s: stalls", s.name)
		assert.Zero(t, r.PlayerErrors, "site %s: player errors", s.name)
		assert.Positive(t, r.Segments, "site %s: segments played", s.name)
		if stun {
			want := map[bool]string{false: swarm.NATCone, true: swarm.NATSymmetric}[s.symmetric]
			assert.Equal(t, map[string]int{want: viewers}, r.NAT, "site %s: its proxies' NAT test", s.name)
		}
	}
	t.Logf("cross-site IP bytes (from>to, counted leaving the first site's router): %v", cross)
	if stun {
		// The symmetric site's proxies are planned with each other only: its segments come
		// from the gateway once per stripe and spread over its LAN (without it: 0.22–0.31).
		assert.Greater(t, reports[2].Offload, 0.45, "site C (symmetric NAT): offload within the site")
	}

	// The acceptance of issue 15, once the proxies cross NATs: the cone sites exchange
	// segments directly. More than one demo segment (about 61 kB) each way, so that ICE
	// checks alone do not pass it.
	if !stun {
		t.Log("cross-site assertion skipped: `rawflow gateway -h` has no --stun-listen (no NAT traversal yet); cone sites A and B exchanged",
			cross["A>B"], "and", cross["B>A"], "IP bytes")
		return
	}
	assert.Greater(t, cross["A>B"]+cross["B>A"], int64(2*64<<10), "cone sites A and B: IP bytes between them (direct peer links)")
	// The swarm report and the dashboard say so too: peer bytes over WebRTC through NATs.
	for i, s := range sites[:2] {
		r := reports[i]
		assert.Positive(t, r.LinkBytesByType["srflx"]+r.LinkBytesByType["prflx"], "site %s: bytes over links through NATs (swarm report)", s.name)
	}
	resp, err := inetHTTP.Get(gwURL + "/api/v1/channels/tv/breakdown")
	require.NoError(t, err)
	defer resp.Body.Close()
	var bd web.Breakdown
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&bd))
	viaNAT := int64(0)
	for _, p := range bd.Paths {
		if p.Path == "srflx" || p.Path == "prflx" {
			viaNAT += p.Bytes
		}
	}
	t.Logf("dashboard: peer bytes by path %+v", bd.Paths)
	assert.Positive(t, viaNAT, "the dashboard's breakdown shows peer bytes through NATs")
}
