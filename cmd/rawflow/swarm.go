package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/loadtest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
)

// maxViewers bounds --viewers: each viewer is a proxy and a player in this process, some
// twenty file descriptors (see raiseFileLimit).
const maxViewers = 5000

func runSwarm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("swarm", "The load and offload benchmark: N proxies in this process, each played by a simulated\n"+
		"hls.js-like player, against a gateway (by default one started here on the built-in source).", stderr)
	gw := fs.String("gateway", "", "gateway base URL; empty: start one here on the built-in live source")
	gatewayCA := fs.String("gateway-ca", "", "PEM file of CAs to trust for an https:// --gateway, besides the system's (a private CA)")
	channel := fs.String("channel", "demo", "channel to play")
	viewers := fs.Int("viewers", 10, "assisted viewers (each a proxy and a player), 0-5000 (0: direct viewers only)")
	direct := fs.Int("direct", 2, "viewers playing the gateway directly: the join-time baseline")
	duration := fs.Duration("duration", time.Minute, "how long to run")
	ramp := fs.Duration("ramp", 0, "viewers join spread over this (default: a tenth of --duration, at most 10s)")
	churn := fs.Float64("churn", 0, "share of viewers replaced during the run (0-1); every other leaves abruptly")
	slow := fs.Float64("slow", 0, "share of viewers with slow uploads (0-1)")
	slowRate := fs.String("slow-rate", "256kbit", "upload cap of the slow viewers, per second")
	variants := fs.String("variants", "", "variant indexes viewers play, round robin, e.g. 0,1,1 (multivariant channels)")
	group := fs.String("group", "", "locality group of every proxy")
	transport := fs.String("peer-transport", peerassist.TransportAuto, "how the proxies reach each other: auto, direct or ice (see rawflow peer -h)")
	portMapping := fs.Bool("port-mapping", false, "have the router forward each proxy's neighbour port (NAT-PMP, UPnP), as rawflow peer does by default; off, so that a run on a real LAN leaves its router's table alone")
	peerHost := fs.String("peer-host", "127.0.0.1", "address the proxies' neighbour ports listen on and advertise (other proxies dial it); 0.0.0.0: every address, advertised as the gateway sees this host")
	cmcd := fs.Bool("cmcd", false, "players send CMCD (buffer length) with segment requests")
	redisURL := fs.String("redis", "", "registry of the gateway started here (empty: in memory)")
	seeders := fs.Int("seeders", 1, "seeders per segment and group, for the gateway started here")
	latency := fs.String("latency", string(gateway.LatencyNormal), latencyUsage+"; for the gateway started here")
	rtt := fs.Duration("gateway-rtt", 0, "for the gateway started here: delay every response by this much, as if viewers were far from the gateway and near each other")
	asJSON := fs.Bool("json", false, "print the final report as JSON")
	logLevel := fs.String("log-level", "error", "debug, info, warn or error")
	cpuProfile := fs.String("cpu-profile", "", "write this process's CPU profile (go tool pprof) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := loadtest.Config{GatewayURL: strings.TrimRight(*gw, "/"), Channel: *channel, Viewers: *viewers, Direct: *direct,
		Duration: *duration, Ramp: *ramp, Churn: *churn, Slow: *slow, Group: *group, CMCD: *cmcd, PeerHost: *peerHost, PeerTransport: *transport, PortMapping: *portMapping,
		Progress: func(r loadtest.Report) { printProgress(stderr, r) }}
	switch {
	case cfg.Viewers < 0 || cfg.Viewers > maxViewers:
		return fmt.Errorf("--viewers %d: want 0-%d", cfg.Viewers, maxViewers)
	case cfg.Direct < 0 || cfg.Direct > 50:
		return fmt.Errorf("--direct %d: want 0-50", cfg.Direct)
	case cfg.Viewers+cfg.Direct == 0:
		return fmt.Errorf("--viewers 0 and --direct 0: nobody to play")
	case net.ParseIP(cfg.PeerHost) == nil:
		return fmt.Errorf("--peer-host %q: want an IP address", cfg.PeerHost)
	case cfg.Duration < 5*time.Second:
		return fmt.Errorf("--duration %s: want at least 5s", cfg.Duration)
	case cfg.Churn < 0 || cfg.Churn > 1 || cfg.Slow < 0 || cfg.Slow > 1:
		return fmt.Errorf("--churn and --slow are shares: want 0-1")
	case !swarm.ValidChannel(cfg.Channel):
		return fmt.Errorf("--channel %q: want 1-64 of A-Z a-z 0-9 _ -", cfg.Channel)
	}
	if *rtt < 0 || *rtt > 5*time.Second {
		return fmt.Errorf("--gateway-rtt %s: want 0-5s", *rtt)
	}
	var err error
	if cfg.GatewayURL != "" {
		if cfg.GatewayRoots, err = gatewayRoots(cfg.GatewayURL, *gatewayCA); err != nil {
			return err
		}
	} else if *gatewayCA != "" {
		return errors.New("--gateway-ca is for an https:// --gateway")
	}
	if cfg.SlowRate, err = parseRate(*slowRate); err != nil {
		return fmt.Errorf("--slow-rate: %w", err)
	}
	if cfg.Variants, err = parseVariants(*variants); err != nil {
		return err
	}
	if cfg.Logger, err = newLogger(stderr, *logLevel); err != nil {
		return err
	}

	if *cpuProfile != "" {
		stop, perr := startCPUProfile(*cpuProfile)
		if perr != nil {
			return perr
		}
		defer stop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg []func(context.Context) error
	if cfg.GatewayURL == "" {
		var reg registry
		if cfg.GatewayURL, bg, reg, err = localGateway(cfg.Channel, *latency, *redisURL, *seeders, *rtt, cfg.Logger); err != nil {
			return err
		}
		defer reg.Close()
	}
	fmt.Fprintf(stderr, "rawflow swarm: %d assisted and %d direct viewers on %s/live/%s for %s\n",
		cfg.Viewers, cfg.Direct, cfg.GatewayURL, cfg.Channel, cfg.Duration)
	var report loadtest.Report
	err = runAll(ctx, append(bg, func(ctx context.Context) error {
		r, runErr := loadtest.Run(ctx, cfg)
		if runErr != nil {
			return runErr
		}
		report = r
		return errDone
	})...)
	if !errors.Is(err, errDone) {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	printReport(stdout, report)
	return nil
}

// parseVariants parses --variants: variant indexes 0-99 separated by commas; none is nil.
func parseVariants(s string) ([]int, error) {
	var out []int
	for v := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' }) {
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || i < 0 || i > 99 {
			return nil, fmt.Errorf("--variants %q: want indexes 0-99 separated by commas", s)
		}
		out = append(out, i)
	}
	return out, nil
}

// localGateway builds the gateway that runSwarm plays when --gateway is empty: channel on
// the built-in live source, on a loopback port, each response delayed by rtt (0: none). It
// returns the gateway's base URL, what to run (the source and the gateway) and the
// registry, which the caller closes.
func localGateway(channel, latency, redisURL string, seeders int, rtt time.Duration, log *slog.Logger) (
	string, []func(context.Context) error, registry, error,
) {
	mode, err := gateway.ParseLatencyMode(latency)
	if err != nil {
		return "", nil, nil, fmt.Errorf("--latency: %w", err)
	}
	if seeders < 1 || seeders > swarm.MaxSeeders {
		return "", nil, nil, fmt.Errorf("--seeders %d: want 1-%d", seeders, swarm.MaxSeeders)
	}
	reg, err := openRegistry(redisURL, swarm.Options{})
	if err != nil {
		return "", nil, nil, err
	}
	origin, err := newDemoOrigin()
	if err != nil {
		reg.Close()
		return "", nil, nil, err
	}
	gcfg := gateway.Config{Channels: []gateway.ChannelConfig{{Name: channel, Sources: []string{origin.url}, Latency: mode}},
		Logger: log, Seeders: seeders, PeerAddrs: swarm.AddrLoopback} // every simulated viewer is on this machine
	g, err := newGatewayNode("127.0.0.1:0", gcfg, reg)
	if err != nil {
		reg.Close()
		return "", nil, nil, err
	}
	if rtt > 0 {
		g.wrap = delayed(rtt)
	}
	return g.url, []func(context.Context) error{origin.run, g.run}, reg, nil
}

// delayed returns middleware that holds each request for d before handling it: one round
// trip to a distant gateway, as far as its clients can tell.
func delayed(d time.Duration) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
			h.ServeHTTP(w, r)
		})
	}
}

// errDone ends runAll when the benchmark is over.
var errDone = fmt.Errorf("benchmark over")

// printProgress prints a line of the figures so far.
func printProgress(w io.Writer, r loadtest.Report) {
	fmt.Fprintf(w, "[%4.0fs] viewers %d  offload %.3f  gateway fetches/segment %.2f  stalls %d (%.1fs)  join p50 %.0f ms (direct %.0f ms)  behind live %.1fs"+
		"  | connections %d  neighbour failures %d  quiet %d  cpu %.0fs\n",
		r.DurationS, r.Viewers, r.Offload, r.GatewayFetchesSeg, r.Stalls, r.StallS, r.JoinP50MS, r.DirectJoinP50MS, r.LatencyS,
		r.Connections, r.NeighbourFailures, r.QuietSpells, r.CPUS)
}

// printReport prints the final report as a table.
func printReport(w io.Writer, r loadtest.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("assisted viewers", "%d (at the end; %d churned, %d slow uploaders)", r.Viewers, r.Churned, r.Slow)
	row("direct viewers", "%d", r.Direct)
	row("duration", "%.0f s", r.DurationS)
	row("offload", "%.3f (limit with one gateway fetch per segment: %.3f)", r.Offload, r.OffloadLimit)
	row("gateway fetches per segment", "%.2f over %d segments (%.2f by stripe roots, the rest fallbacks)", r.GatewayFetchesSeg, r.Segments, r.RootFetchesSeg)
	row("stalls", "%d, %.1f s (direct viewers: %d, %.1f s)", r.Stalls, r.StallS, r.DirectStalls, r.DirectStallS)
	row("join time p50 / p95", "%.0f / %.0f ms (direct: %.0f / %.0f ms)", r.JoinP50MS, r.JoinP95MS, r.DirectJoinP50MS, r.DirectJoinP95MS)
	row("behind live", "%.1f s (direct: %.1f s; players start 3 segments from the end of their playlist)", r.LatencyS, r.DirectLatencyS)
	row("tracker requests", "%.2f per viewer per segment; %d refused (429)", r.TrackerPerViewSeg, r.TrackerRefused)
	row("connections", "%d opened by the proxies, %.1f per viewer", r.Connections, r.ConnsPerViewer)
	row("WebRTC links", "%d set up (mean %.0f ms), %d failed; bytes received over them: %s", r.LinksConnected, r.LinkConnectMS, r.LinksFailed, byType(r.LinkBytesByType))
	if r.NAT["cone"]+r.NAT["symmetric"] > 0 { // a gateway with two STUN ports
		row("NATs", "proxies behind a cone NAT %d, a symmetric one %d, not told %d", r.NAT["cone"], r.NAT["symmetric"], r.NAT["unknown"])
	}
	row("cpu", "%.1f s, %.2f cores (this process)", r.CPUS, r.CPUCores)
	row("integrity / neighbour failures", "%d / %d", r.IntegrityFailures, r.NeighbourFailures)
	row("partial transfers completed by Range", "%d", r.RangeCompletions)
	row("gateway transfers resumed by Range / fetches held back", "%d / %d", r.GatewayResumes, r.Held)
	row("uplinks gone quiet", "%d", r.QuietSpells)
	row("players not started / request errors", "%d / %d", r.NotStarted, r.PlayerErrors)
	_ = tw.Flush()
}

// byType formats bytes by link type, in a fixed order.
func byType(m map[string]int64) string {
	var parts []string
	for _, t := range []string{"host", "srflx", "prflx", "relay"} {
		parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
	}
	return strings.Join(parts, ", ")
}

// startCPUProfile profiles the process's CPU into path until the returned stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
