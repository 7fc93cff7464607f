package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/loadtest"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
)

// maxDemoViewers bounds the demo's simulated audience: it shares the machine with
// everything else the demo runs.
const maxDemoViewers = 200

// demoRamp is the time the demo's simulated viewers take to join, all of them within the
// dashboard's first half-minute.
const demoRamp = 5 * time.Second

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "Everything on one machine: the built-in live source, a gateway, N proxies for you to play\n"+
		"and a small simulated audience (viewers through their own proxies), so the dashboard shows a swarm at once.", stderr)
	addr := fs.String("listen", ":8080", "gateway (and dashboard) listen address")
	peers := fs.Int("peers", 2, "peer-assist proxies for you to play, 0-50")
	proxyPort := fs.Int("proxy-port", 8081, "port of the first of those proxies, on 127.0.0.1; the next ones count up from it (a taken port falls back to a free one; 0: free ports)")
	viewers := fs.Int("viewers", 12, fmt.Sprintf("simulated viewers, each a player through its own proxy, 0-%d (0: none)", maxDemoViewers))
	open := fs.Bool("open", false, "open the dashboard in the default browser")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	latency := fs.String("latency", string(gateway.LatencyNormal), latencyUsage)
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *peers < 0 || *peers > 50:
		return fmt.Errorf("--peers %d: want 0-50", *peers)
	case *viewers < 0 || *viewers > maxDemoViewers:
		return fmt.Errorf("--viewers %d: want 0-%d", *viewers, maxDemoViewers)
	case *proxyPort < 0 || *proxyPort > 65535 || (*proxyPort > 0 && *proxyPort+*peers-1 > 65535):
		return fmt.Errorf("--proxy-port %d: want 0 (free ports) or 1-65535, with room for --peers %d consecutive ports", *proxyPort, *peers)
	}
	mode, err := gateway.ParseLatencyMode(*latency)
	if err != nil {
		return fmt.Errorf("--latency: %w", err)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	origin, err := newDemoOrigin()
	if err != nil {
		return err
	}
	reg := swarm.NewMemory(swarm.Options{})
	defer reg.Close()
	gcfg := gateway.Config{Channels: []gateway.ChannelConfig{{Name: "demo", Sources: []string{origin.url}, Latency: mode}}, Logger: log,
		PeerAddrs: swarm.AddrLoopback} // every proxy of the demo is on this machine
	g, err := newGatewayNode(*addr, gcfg, reg)
	if err != nil {
		return err
	}
	gwURL := pasteableURL(g.ln.Addr())
	fns := []func(context.Context) error{origin.run, g.run}

	var proxies []string
	var notes []string
	for i := range *peers {
		pcfg := peerassist.Config{GatewayURL: gwURL, Logger: log.With("proxy", i+1)}
		n, note, err := demoProxy(ctx, *proxyPort, i, pcfg)
		if err != nil {
			return err
		}
		if note != "" {
			notes = append(notes, note)
		}
		fns = append(fns, n.run)
		proxies = append(proxies, n.url)
	}
	if *viewers > 0 {
		fns = append(fns, demoAudience(loadtest.Config{GatewayURL: gwURL, Channel: "demo", Viewers: *viewers,
			Duration: 100 * 365 * 24 * time.Hour, Ramp: demoRamp, Logger: log}))
	}

	audience := "no simulated viewers"
	if *viewers > 0 {
		audience = fmt.Sprintf("%d simulated viewers", *viewers)
	}
	fmt.Fprintf(stdout, "RawFlow demo: built-in live source, a gateway, %d peer-assist proxies for you and %s.\n\n", *peers, audience)
	fmt.Fprintf(stdout, "  dashboard              %s/\n", gwURL)
	play := gwURL + "/live/demo/index.m3u8"
	if len(proxies) > 0 {
		play = proxies[0] + "/live/demo/index.m3u8"
	}
	fmt.Fprintf(stdout, "  play this              ffplay %s   (or vlc, mpv: any HLS player)\n\n", play)
	for i, u := range proxies {
		fmt.Fprintf(stdout, "  proxy %d                %s/live/demo/index.m3u8   (status %s/api/v1/status)\n", i+1, u, u)
	}
	fmt.Fprintf(stdout, "  gateway (direct play)  %s/live/demo/index.m3u8\n", gwURL)
	fmt.Fprintf(stdout, "  gateway stats          %s/api/v1/stats\n", gwURL)
	for _, n := range notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	fmt.Fprintln(stdout)
	if *viewers > 0 {
		fmt.Fprintf(stdout, "The %d simulated viewers join within %s; the dashboard shows them and the offload within 30 s.\n"+
			"Your own player on a proxy URL shows up among them. --viewers 0: no simulated viewers.\n", *viewers, demoRamp)
	}
	if *duration > 0 {
		fmt.Fprintf(stdout, "Stopping after %s.\n", duration.Round(time.Second))
	} else {
		fmt.Fprintf(stdout, "Ctrl-C stops.\n")
	}
	if *open {
		openBrowser(ctx, gwURL+"/", stdout)
	}
	return runAll(ctx, fns...)
}

// pasteableURL is the base URL of a listener as a browser or player can use it when
// pasted: a listener on every address (0.0.0.0, ::) is reached at 127.0.0.1.
func pasteableURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// demoProxy starts the demo's proxy i for people to play: on 127.0.0.1:base+i, or on a free
// port when base is 0 or that port cannot be had (note then says so).
func demoProxy(ctx context.Context, base, i int, cfg peerassist.Config) (n *peerNode, note string, err error) {
	if base > 0 {
		port := strconv.Itoa(base + i)
		n, err = newPeerNode(ctx, net.JoinHostPort("127.0.0.1", port), "127.0.0.1:0", cfg)
		if err == nil {
			return n, "", nil
		}
		note = fmt.Sprintf("proxy %d: port %s is taken (%v), on a free port instead", i+1, port, err)
	}
	n, err = newPeerNode(ctx, "127.0.0.1:0", "127.0.0.1:0", cfg)
	if err != nil {
		return nil, "", fmt.Errorf("proxy %d: %w", i+1, err)
	}
	return n, note, nil
}

// demoAudience runs the swarm simulator's viewers (package loadtest, as `rawflow swarm`)
// until ctx ends; ending then is no error.
func demoAudience(cfg loadtest.Config) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := loadtest.Run(ctx, cfg)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("simulated viewers: %w", err)
		}
		return nil // ctx ended: the demo is over
	}
}
