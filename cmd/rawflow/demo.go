package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/swarm"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "Everything on one machine: the built-in live source, a gateway and N proxies.", stderr)
	addr := fs.String("listen", ":8080", "gateway listen address")
	peers := fs.Int("peers", 2, "number of peer-assist proxies")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	latency := fs.String("latency", string(gateway.LatencyNormal), latencyUsage)
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *peers < 0 || *peers > 50 {
		return fmt.Errorf("--peers %d: want 0-50", *peers)
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
	fns := []func(context.Context) error{origin.run, g.run}
	fmt.Fprintf(stdout, "RawFlow demo: built-in live source, a gateway and %d peer-assist proxies.\n\n", *peers)
	fmt.Fprintf(stdout, "  gateway (direct play)  %s/live/demo/index.m3u8\n", g.url)
	fmt.Fprintf(stdout, "  dashboard              %s/\n", g.url)
	fmt.Fprintf(stdout, "  gateway stats          %s/api/v1/stats\n", g.url)
	for i := range *peers {
		pcfg := peerassist.Config{GatewayURL: g.url, Logger: log.With("proxy", i+1)}
		n, err := newPeerNode(ctx, "127.0.0.1:0", "127.0.0.1:0", pcfg)
		if err != nil {
			return err
		}
		fns = append(fns, n.run)
		fmt.Fprintf(stdout, "  proxy %d                %s/live/demo/index.m3u8   (status %s/api/v1/status)\n", i+1, n.url, n.url)
	}
	fmt.Fprintf(stdout, "\nPlay a proxy URL with any HLS player, e.g. ffplay or: ffmpeg -i URL -c copy -f null -\n")
	if *duration > 0 {
		fmt.Fprintf(stdout, "Stopping after %s.\n", duration.Round(time.Second))
	} else {
		fmt.Fprintf(stdout, "Ctrl-C stops.\n")
	}
	return runAll(ctx, fns...)
}
