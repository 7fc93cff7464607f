//go:build e2e && linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/loadtest"
)

// TestPortMappedSite: two home sites behind symmetric NATs (MASQUERADE --random-fully), which
// ICE cannot cross without a relay: without port mapping no byte goes between them (bench/nat.sh
// site C). Site M's router runs miniupnpd (NAT-PMP and UPnP IGD, as many home routers do), and
// its proxies (rawflow swarm --port-mapping) have it forward their neighbour ports: the router's
// table holds one forwarding per proxy while they run, the proxies advertise the router's
// public ports, site S's proxies fetch segments from them over TCP and TLS, and the
// forwardings are gone once the proxies stop. Both sites play without a stall. A third
// site, U, behind a router that offers UPnP IGD only: a `rawflow peer` with default flags
// gets its neighbour port forwarded, says so in its status, and removes it on SIGINT.
func TestPortMappedSite(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("port mapping: not in -short")
	}
	lab := newNetLab(t)
	for _, c := range []string{"miniupnpd", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("port mapping: %s missing (make deps installs miniupnpd-nftables); skipped", c)
		}
	}
	bin := buildRawflow(t)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)

	const (
		gwIP     = "203.0.113.2"
		viewers  = 3
		duration = 30 * time.Second
	)
	inet := lab.internet(gwIP)

	// M's public address must be one miniupnpd takes for public: it refuses the documentation
	// ranges (198.51.100.0/24 and the like) as "reserved". 11.0.0.0/8 is routed only inside
	// these namespaces.
	sites := []*natSite{{name: "M", symmetric: true, public: "11.0.0.2", host: "192.168.1.2"},
		{name: "S", symmetric: true, public: "198.51.100.6", host: "192.168.2.2"}}
	lab.homeSite(inet, sites[0], "11.0.0.1")
	lab.homeSite(inet, sites[1], "198.51.100.5")
	m, other := sites[0], sites[1]
	// What S's router forwards into its LAN from M's public address: the segments M's
	// proxies serve to S's over the connections S's proxies opened.
	lab.iptables(other.router, "-A", "NATACCT", "-i", "wan0", "-o", "lan0", "-s", m.public, "-m", "comment", "--comment", "from-siteM")

	// M's router: miniupnpd, its rules in an nftables table of its own.
	forwards := startMiniupnpd(t, lab, m, true)

	// Site U: one viewer's `rawflow peer` with default flags behind a router that offers UPnP
	// IGD only (no NAT-PMP).
	u := &natSite{name: "U", public: "11.0.0.6", host: "192.168.3.2"}
	lab.homeSite(inet, u, "11.0.0.5")
	forwardsU := startMiniupnpd(t, lab, u, false)

	gwURL, _ := lab.startGateway(ctx, inet, bin, gwIP)

	peerU := lab.start(ctx, nil, u.site, "peer U", bin, "peer", "--gateway", gwURL, "--listen", "127.0.0.1:18081", "--peer-listen", ":18082")

	reports := make([]loadtest.Report, len(sites))
	procs := make([]*faultProc, len(sites))
	outs := make([]*procOutput, len(sites))
	for i, s := range sites {
		outs[i] = &procOutput{}
		args := []string{"swarm", "--gateway", gwURL, "--channel", "tv", "--viewers", fmt.Sprint(viewers), "--direct", "0",
			"--peer-host", s.host, "--duration", duration.String(), "--json"}
		if s == m {
			args = append(args, "--port-mapping")
		}
		procs[i] = lab.start(ctx, outs[i], s.site, "swarm "+s.name, bin, args...)
	}
	// While M's proxies run, the router forwards one port to each.
	seen := 0
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end) && seen < viewers; time.Sleep(250 * time.Millisecond) {
		seen = forwards()
	}
	assert.Equal(t, viewers, seen, "forwardings in M's router (one per proxy)")

	// U's proxy: forwarded over UPnP, and says so.
	uHTTP := lab.client(u.site)
	var status struct {
		PortMapping *struct{ External, Method string } `json:"port_mapping"`
	}
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end) && status.PortMapping == nil; time.Sleep(250 * time.Millisecond) {
		if resp, err := uHTTP.Get("http://127.0.0.1:18081/api/v1/status"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&status)
			resp.Body.Close()
		}
	}
	if assert.NotNil(t, status.PortMapping, "site U: the proxy's status shows no port mapping") {
		assert.Equal(t, "upnp", status.PortMapping.Method)
		assert.Regexp(t, `^11\.0\.0\.6:[0-9]+$`, status.PortMapping.External)
	}
	assert.Equal(t, 1, forwardsU(), "forwardings in U's router")
	require.NoError(t, peerU.cmd.Process.Signal(os.Interrupt))
	select {
	case <-peerU.done:
	case <-time.After(15 * time.Second):
		t.Error("site U: the proxy still runs 15 s after SIGINT")
	}
	assert.Zero(t, forwardsU(), "forwardings left in U's router after its proxy stopped")

	var wg sync.WaitGroup
	for i, s := range sites {
		wg.Go(func() { reports[i] = waitReport(t, procs[i], outs[i], "site "+s.name, duration) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	assert.Zero(t, forwards(), "forwardings left in M's router after its proxies stopped")

	b, _ := lab.counters(other.router, "NATACCT")
	for i, s := range sites {
		r := reports[i]
		t.Logf("site %s: %d viewers, offload %.3f, %d stalls, bytes from peers %d, from the gateway %d",
			s.name, r.Viewers, r.Offload, r.Stalls, r.BytesFromPeers, r.BytesFromGateway)
		assert.Zero(t, r.Stalls, "site %s: stalls", s.name)
		assert.Zero(t, r.NotStarted, "site %s: viewers that never started", s.name)
		assert.Positive(t, r.Segments, "site %s: segments played", s.name)
	}
	t.Logf("IP bytes from M's public address into S's LAN: %d", b["from-siteM"])
	// More than two demo segments (about 61 kB each): ICE checks alone cannot pass it.
	assert.Greater(t, b["from-siteM"], int64(2*64<<10), "site S fetched from site M's forwarded ports")
}

// startMiniupnpd runs miniupnpd on s's router until the test ends (NAT-PMP too when natpmp,
// UPnP IGD always), forwarding to s's LAN, and returns a count of the forwardings it holds.
func startMiniupnpd(t *testing.T, lab *netLab, s *natSite, natpmp bool) func() int {
	t.Helper()
	dir := t.TempDir()
	// The router's files are bench/nat.sh's (PORTMAP), in bench/miniupnpd.
	nftFile, conf := filepath.Join("..", "..", "bench", "miniupnpd", "table.nft"), filepath.Join(dir, "miniupnpd.conf")
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "bench", "miniupnpd", "miniupnpd.conf"))
	require.NoError(t, err)
	fill := strings.NewReplacer("@NATPMP@", map[bool]string{true: "yes", false: "no"}[natpmp], "@LAN@", strings.TrimSuffix(s.host, ".2")+".0/24")
	require.NoError(t, os.WriteFile(conf, []byte(fill.Replace(string(tmpl))), 0o600))
	lab.exec(s.router, "nft", "-f", nftFile)
	lab.start(t.Context(), nil, s.router, "miniupnpd "+s.name, "miniupnpd", "-f", conf, "-d", "-P", filepath.Join(dir, "miniupnpd.pid"))
	return func() int {
		out := lab.exec(s.router, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd")
		return strings.Count(out, "dnat ip to "+s.host+":")
	}
}
