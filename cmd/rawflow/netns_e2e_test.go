//go:build e2e && linux

package main

// Network namespace helpers for the end-to-end tests that need a network of their own (NAT
// routers, sites): they run `ip` and `iptables` in namespaces the test creates, named after
// the process and a counter so that parallel tests (and parallel test binaries) never share
// one; addresses live inside those namespaces, so tests may reuse the same ones. Everything
// is deleted in t.Cleanup. The test process itself stays in the root namespace: it reaches a
// namespace's network by opening sockets on a thread that joined it (inNetns).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/rawflow/rawflow/loadtest"
)

var netLabSeq atomic.Int64

// netLab is one test's set of network namespaces.
type netLab struct {
	t  *testing.T
	id string // prefix of the namespaces' names
}

// newNetLab returns a lab for t, or skips t when this machine cannot give it namespaces:
// not root, `ip` or `iptables` missing, `ip netns add` refused (a container without
// CAP_SYS_ADMIN, say), or iptables failing in a namespace (a kernel without its NAT
// tables). `make deps` installs iproute2 and iptables.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces: needs root (ip netns add); skipped")
	}
	for _, c := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("network namespaces: %s missing (make deps installs iproute2 and iptables); skipped", c)
		}
	}
	l := &netLab{t: t, id: fmt.Sprintf("rft%d-%d", os.Getpid(), netLabSeq.Add(1))}
	probe := l.id + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("network namespaces: `ip netns add` fails here (%v: %s); skipped", err, strings.TrimSpace(string(out)))
	}
	defer func() { _ = exec.Command("ip", "netns", "del", probe).Run() }()
	if out, err := exec.Command("ip", "netns", "exec", probe, "iptables", "-w", "-t", "nat", "-L", "-n").CombinedOutput(); err != nil {
		t.Skipf("network namespaces: iptables fails in one (%v: %s); skipped", err, strings.TrimSpace(string(out)))
	}
	return l
}

// ns creates the namespace NAME (its full name is returned), with lo up; it is deleted when
// the test ends, after the processes started in it (t.Cleanup runs in reverse order).
func (l *netLab) ns(name string) string {
	l.t.Helper()
	full := l.id + "-" + name
	l.ip("netns", "add", full)
	l.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", full).Run() })
	l.ip("-n", full, "link", "set", "lo", "up")
	return full
}

// ip runs `ip ARGS…` and fails the test if it fails.
func (l *netLab) ip(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(l.t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// exec runs a command in namespace ns and returns its output; it fails the test if the
// command fails.
func (l *netLab) exec(ns string, args ...string) string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(l.t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	require.NoError(l.t, err, "in %s: %s: %s", ns, strings.Join(args, " "), out)
	return string(out)
}

// iptables runs iptables in ns (-w: the xtables lock is shared by every namespace).
func (l *netLab) iptables(ns string, args ...string) string {
	l.t.Helper()
	return l.exec(ns, append([]string{"iptables", "-w"}, args...)...)
}

// counters returns the byte and packet counters of the rules of chain (filter table) in ns
// that carry a comment, by comment.
func (l *netLab) counters(ns, chain string) (bytes, packets map[string]int64) {
	l.t.Helper()
	bytes, packets = map[string]int64{}, map[string]int64{}
	for line := range strings.SplitSeq(l.iptables(ns, "-L", chain, "-v", "-x", "-n"), "\n") {
		i := strings.Index(line, "/* ")
		j := strings.Index(line, " */")
		f := strings.Fields(line)
		if i < 0 || j < i || len(f) < 2 {
			continue
		}
		p, err1 := strconv.ParseInt(f[0], 10, 64)
		b, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		name := line[i+3 : j]
		bytes[name] += b
		packets[name] += p
	}
	return bytes, packets
}

// veth joins namespaces a and b with a veth pair, devA in a and devB in b, addresses (CIDR)
// addrA and addrB, both up.
func (l *netLab) veth(a, devA, addrA, b, devB, addrB string) {
	l.t.Helper()
	l.ip("link", "add", "name", devA, "netns", a, "type", "veth", "peer", "name", devB, "netns", b)
	l.ip("-n", a, "addr", "add", addrA, "dev", devA)
	l.ip("-n", b, "addr", "add", addrB, "dev", devB)
	l.ip("-n", a, "link", "set", devA, "up")
	l.ip("-n", b, "link", "set", devB, "up")
}

// start runs bin with args in namespace ns until the test ends (killed then; the tail of its
// output is logged if the test failed). Its standard output goes to stdout when not nil.
func (l *netLab) start(ctx context.Context, stdout io.Writer, ns, name, bin string, args ...string) *faultProc {
	l.t.Helper()
	p := &faultProc{out: &procOutput{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	require.NoError(l.t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	l.t.Cleanup(func() {
		p.kill()
		if l.t.Failed() {
			l.t.Logf("%s (pid %d) output:\n%s", name, p.cmd.Process.Pid, p.out.tail(8<<10))
		}
	})
	return p
}

// inNetns runs f on an OS thread that joined network namespace ns: the sockets f opens
// belong to ns and stay there, whatever goroutine uses them later. The thread is never
// handed back to the scheduler (its goroutine exits locked to it, so the runtime ends it).
func inNetns(ns string, f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread ends with this goroutine
		fd, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer fd.Close()
		if err := unix.Setns(int(fd.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		f()
		errc <- nil
	}()
	return <-errc
}

// dial opens a TCP connection to addr from namespace ns, giving up after timeout.
func (l *netLab) dial(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	var err error
	if nerr := inNetns(ns, func() { c, err = net.DialTimeout("tcp", addr, timeout) }); nerr != nil {
		return nil, nerr
	}
	return c, err
}

// listen opens a TCP listener on addr in namespace ns, closed when the test ends; it accepts
// and closes every connection.
func (l *netLab) listen(ns, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	var err error
	require.NoError(l.t, inNetns(ns, func() { ln, err = net.Listen("tcp", addr) }))
	require.NoError(l.t, err)
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// client is an HTTP client whose connections are opened in namespace ns.
func (l *netLab) client(ns string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			var err error
			if nerr := inNetns(ns, func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) }); nerr != nil {
				return nil, nerr
			}
			return c, err
		},
	}}
}

// internet creates the namespace "inet": a router between the sites' NAT routers, with
// gwIP (the gateway's address) on its lo. It returns the namespace's name.
func (l *netLab) internet(gwIP string) string {
	l.t.Helper()
	inet := l.ns("inet")
	l.exec(inet, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.ip("-n", inet, "addr", "add", gwIP+"/32", "dev", "lo")
	return inet
}

// homeSite builds site s behind its NAT router: namespaces s.router and s.site, the
// router's WAN (s.public, /30 with isp on the internet namespace inet's side), the LAN
// (s.host's /24, the router on .1), routes both ways, and the router's rules: MASQUERADE
// (--random-fully when s.symmetric: a new public port per destination), and a filter that
// lets in from the WAN only replies to flows the site opened and flows to ports the router
// forwards (conntrack DNAT: none without port mapping), dropping the rest (counted:
// "blocked-forward", "blocked-input"). FORWARD jumps first to an empty chain NATACCT, for
// the test's counters.
func (l *netLab) homeSite(inet string, s *natSite, isp string) {
	l.t.Helper()
	lan := strings.TrimSuffix(s.host, ".2")
	s.router, s.site = l.ns("nat"+s.name), l.ns("site"+s.name)
	l.veth(inet, "s"+s.name, isp+"/30", s.router, "wan0", s.public+"/30")
	l.veth(s.router, "lan0", lan+".1/24", s.site, "lan0", s.host+"/24")
	l.ip("-n", s.router, "route", "add", "default", "via", isp)
	l.ip("-n", s.site, "route", "add", "default", "via", lan+".1")
	// The internet routes the site's LAN to its router, so that a connect from outside
	// reaches the router's filter rather than failing for want of a route.
	l.ip("-n", inet, "route", "add", lan+".0/24", "via", s.public)
	l.exec(s.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	masq := []string{"-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"}
	if s.symmetric {
		masq = append(masq, "--random-fully")
	}
	l.iptables(s.router, masq...)
	for _, rule := range [][]string{
		{"-N", "NATACCT"},
		{"-P", "FORWARD", "DROP"},
		{"-A", "FORWARD", "-j", "NATACCT"},
		{"-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED,DNAT", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan0", "-m", "comment", "--comment", "blocked-forward", "-j", "DROP"},
		{"-A", "INPUT", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", "wan0", "-m", "comment", "--comment", "blocked-input", "-j", "DROP"},
	} {
		l.iptables(s.router, rule...)
	}
}

// startGateway runs `rawflow gateway --channel tv=demo` on ip:8080 in namespace ns and
// waits until it lists a segment; it returns its URL and an HTTP client in ns.
func (l *netLab) startGateway(ctx context.Context, ns, bin, ip string) (string, *http.Client) {
	l.t.Helper()
	l.start(ctx, nil, ns, "gateway", bin, "gateway", "--listen", ip+":8080", "--channel", "tv=demo", "--log-level", "warn")
	url, client := "http://"+ip+":8080", l.client(ns)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url + "/live/tv/index.m3u8")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, client
			}
		}
		require.True(l.t, time.Now().Before(deadline), "the gateway lists no segment within 20 s: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReport waits for a `rawflow swarm --json` of the given duration to end (a minute
// more at most) and returns its report; it fails t (and returns the zero report) when the
// swarm overruns, fails or prints no report.
func waitReport(t *testing.T, p *faultProc, stdout *procOutput, name string, duration time.Duration) loadtest.Report {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(duration + time.Minute):
		t.Errorf("%s: the swarm still runs a minute after its %s", name, duration)
		return loadtest.Report{}
	}
	if !assert.Zero(t, p.cmd.ProcessState.ExitCode(), "%s: swarm exit", name) {
		return loadtest.Report{}
	}
	var r loadtest.Report
	out := stdout.tail(1 << 20)
	assert.NoError(t, json.Unmarshal([]byte(out), &r), "%s: report %q", name, out)
	return r
}
