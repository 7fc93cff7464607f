package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/swarm"
)

func runGateway(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("gateway", "The edge: pulls each channel from its origin and serves players and proxies.", stderr)
	addr := fs.String("listen", ":8080", "HTTP listen address")
	var channels listFlag
	fs.Var(&channels, "channel", "NAME=SOURCE[,SOURCE…], repeatable; SOURCE is an HLS playlist URL, a continuous MPEG-TS stream (http(s)://…, udp://[@]HOST:PORT[?iface=NAME], srt://HOST:PORT[?streamid=ID], srt://:PORT?mode=listener) or 'demo'; later sources take over when earlier ones fail")
	redisURL := fs.String("redis", "", "Redis URL for the registry and stats: redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS); Sentinel: add ?master_name=NAME[&addr=HOST:PORT…]; Cluster: add ?cluster=1[&addr=HOST:PORT…] (README, Registry); empty: in memory")
	redisCA := fs.String("redis-ca", "", "PEM file of the CAs to trust for a rediss:// Redis; empty: the system's")
	segDur := fs.Duration("segment-duration", 2*time.Second, "target duration of the segments cut from MPEG-TS sources (whole seconds, 1s-30s); a segment starts at the first keyframe of each such span of the source's timeline")
	window := fs.Int("window", 6, "segments listed per playlist (at least 4 more than the latency mode makes proxies hide)")
	latency := addLatencyFlags(fs)
	trackerRate := fs.Float64("tracker-rate", 100, "tracker calls per second one address may make (burst twice that); more get 429")
	seeders := fs.Int("seeders", 1, "proxies per locality group elected to fetch each segment from the gateway (1-8)")
	maxBytes := fs.String("max-channel-bytes", "256MiB", "bytes held per media playlist (each rendition of a channel)")
	peerKey := fs.String("peer-key", "", "secret that signs the peers' tracker tokens; gateways sharing a Redis must share it; empty: random at start (peers rejoin after a restart)")
	signKey := fs.String("sign-key", "", "secret for signed viewer URLs: /live requests then need ?token= (see 'rawflow token'); empty: open")
	price := fs.Float64("price-per-gb", 0.02, "what delivery costs the broadcaster per GB, for the money the dashboard says peers saved")
	currency := fs.String("currency", "USD", "currency code of --price-per-gb")
	drain := fs.Duration("drain", 0, "on SIGTERM or SIGINT: answer /readyz 503 and go on serving this long (so load balancers take the gateway out), then stop accepting and give in-flight responses up to 5s")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *drain < 0 || *drain > 10*time.Minute {
		return fmt.Errorf("--drain %s: want 0-10m", *drain)
	}
	if *price <= 0 {
		return fmt.Errorf("--price-per-gb %g: want a positive price", *price)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg := gateway.Config{WindowSegments: *window, Logger: log, SignKey: []byte(*signKey), PeerKey: []byte(*peerKey),
		TrackerRate: *trackerRate, SegmentDuration: *segDur, PricePerGB: *price, Currency: *currency}
	if cfg.MaxChannelBytes, err = parseSize(*maxBytes); err != nil {
		return fmt.Errorf("--max-channel-bytes: %w", err)
	}
	var extra []func(context.Context) error
	for _, c := range channels {
		name, src, ok := strings.Cut(c, "=")
		if !ok || name == "" || src == "" {
			return fmt.Errorf("--channel %q: want NAME=SOURCE", c)
		}
		cc := gateway.ChannelConfig{Name: name}
		for _, one := range strings.Split(src, ",") {
			if one == "demo" {
				d, err := newDemoOrigin()
				if err != nil {
					return err
				}
				one, extra = d.url, append(extra, d.run)
			}
			cc.Sources = append(cc.Sources, one)
		}
		cfg.Channels = append(cfg.Channels, cc)
	}
	if err := latency.apply(cfg.Channels); err != nil {
		return err
	}
	if *trackerRate <= 0 {
		return fmt.Errorf("--tracker-rate %g: want a positive rate", *trackerRate)
	}
	if *seeders < 1 || *seeders > swarm.MaxSeeders {
		return fmt.Errorf("--seeders %d: want 1-%d", *seeders, swarm.MaxSeeders)
	}
	reg, err := openRegistry(*redisURL, swarm.Options{Seeders: *seeders, TLSCAFile: *redisCA})
	if err != nil {
		return err
	}
	defer reg.Close()
	g, err := newGatewayNode(*addr, cfg, reg)
	if err != nil {
		return err
	}
	g.drain = *drain
	log.Info("gateway listening", "url", g.url, "channels", len(cfg.Channels), "redis", *redisURL != "")
	return runAll(ctx, append(extra, g.run)...)
}

// latencyUsage documents --latency.
const latencyUsage = "latency mode: low, normal or high; more latency gives the swarm more time to spread each segment (see README, Latency modes)"

// latencyFlags set each channel's latency mode: --latency for all, --channel-latency for one.
type latencyFlags struct {
	all        *string
	perChannel listFlag
}

func addLatencyFlags(fs *flag.FlagSet) *latencyFlags {
	l := &latencyFlags{all: fs.String("latency", string(gateway.LatencyNormal), latencyUsage+"; applies to every channel")}
	fs.Var(&l.perChannel, "channel-latency", "NAME=MODE, repeatable: the latency mode of one channel, instead of --latency")
	return l
}

// apply sets the latency mode of every channel in chs.
func (l *latencyFlags) apply(chs []gateway.ChannelConfig) error {
	all, err := gateway.ParseLatencyMode(*l.all)
	if err != nil {
		return fmt.Errorf("--latency: %w", err)
	}
	index := map[string]int{}
	for i := range chs {
		chs[i].Latency = all
		index[chs[i].Name] = i
	}
	seen := map[string]bool{}
	for _, c := range l.perChannel {
		name, mode, ok := strings.Cut(c, "=")
		i, known := index[name]
		switch {
		case !ok || name == "" || mode == "":
			return fmt.Errorf("--channel-latency %q: want NAME=MODE", c)
		case !known:
			return fmt.Errorf("--channel-latency %q: no channel %q (give it with --channel)", c, name)
		case seen[name]:
			return fmt.Errorf("--channel-latency %q: channel %q given twice", c, name)
		}
		seen[name] = true
		if chs[i].Latency, err = gateway.ParseLatencyMode(mode); err != nil {
			return fmt.Errorf("--channel-latency %q: %w", c, err)
		}
	}
	return nil
}

// openRegistry opens Redis when url is set, else the in-memory registry.
func openRegistry(url string, opts swarm.Options) (swarm.Registry, error) {
	if url == "" {
		return swarm.NewMemory(opts), nil
	}
	r, err := swarm.OpenRedis(url, opts)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	return r, nil
}

func runToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token", "Prints a signed-URL token for a channel of a gateway run with --sign-key.", stderr)
	key := fs.String("sign-key", "", "the gateway's --sign-key (required)")
	channel := fs.String("channel", "", "channel name (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *key == "":
		return errors.New("--sign-key is required")
	case !swarm.ValidChannel(*channel):
		return fmt.Errorf("--channel %q: want 1-64 of A-Z a-z 0-9 _ -", *channel)
	case *ttl <= 0:
		return fmt.Errorf("--ttl %s: want a positive duration", *ttl)
	}
	fmt.Fprintln(stdout, gateway.Token([]byte(*key), *channel, time.Now().Add(*ttl)))
	return nil
}
