package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/swarm"
	"github.com/rawflow/rawflow/web"
)

// gatewayOpts are the gateway's flags.
type gatewayOpts struct {
	addr, redisURL, redisCA, maxBytes, peerKey, signKey, currency, logLevel, peerAddrs, originAddrs, adminToken, egressLimit *string
	segDur, drain                                                                                                            *time.Duration
	window, seeders, peersPerAddr, busyTransfers                                                                             *int
	trackerRate, joinRate, peerRate, price                                                                                   *float64
	channels, playerOrigins                                                                                                  listFlag
	latency                                                                                                                  *latencyFlags
	tls                                                                                                                      *tlsOpts
	ice                                                                                                                      iceOpts
}

func gatewayFlags(stderr io.Writer) (*flag.FlagSet, *gatewayOpts) {
	fs := newFlagSet("gateway", "The edge: pulls each channel from its origin and serves players and proxies.\n"+
		"SIGHUP reloads the channels (--channel, --latency, --channel-latency) from --config; those given on the\n"+
		"command line or in the environment stay as they were at start (they cannot change).", stderr)
	o := &gatewayOpts{}
	o.addr = fs.String("listen", ":8080", "listen address: plain HTTP, or HTTPS with --tls-cert or --acme-domain")
	fs.Var(&o.channels, "channel", "NAME=SOURCE[,SOURCE…], repeatable; SOURCE is an HLS playlist URL, a continuous MPEG-TS stream (http(s)://…, udp://[@]HOST:PORT[?iface=NAME], srt://HOST:PORT[?streamid=ID], srt://:PORT?mode=listener) or 'demo'; later sources take over when earlier ones fail")
	o.redisURL = fs.String("redis", "", "Redis URL for the registry and stats: redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS); Sentinel: add ?master_name=NAME[&addr=HOST:PORT…]; Cluster: add ?cluster=1[&addr=HOST:PORT…] (README, Registry); empty: in memory")
	o.redisCA = fs.String("redis-ca", "", "PEM file of the CAs to trust for a rediss:// Redis; empty: the system's")
	o.segDur = fs.Duration("segment-duration", 2*time.Second, "target duration of the segments cut from MPEG-TS sources (whole seconds, 1s-30s); a segment starts at the first keyframe of each such span of the source's timeline")
	o.window = fs.Int("window", 6, "segments listed per playlist (at least 4 more than the latency mode makes proxies hide)")
	o.latency = addLatencyFlags(fs)
	o.trackerRate = fs.Float64("tracker-rate", 2000, "tracker calls per second one client address may make, all its proxies together (burst twice that; each proxy's own calls are limited too); more get 429")
	o.joinRate = fs.Float64("join-rate", 100, "new proxies per second one client address may bring (burst ten times that); more get 429")
	o.peerRate = fs.Float64("peer-rate", 1, "tracker calls per second one proxy may make (burst 10); more get 429")
	o.peersPerAddr = fs.Int("peers-per-address", 2000, "proxies one client address may have in the swarm at once (open event streams); more get 429")
	o.peerAddrs = fs.String("peer-addrs", "public", "neighbour addresses proxies may advertise and dial: public (the internet), private (also RFC 1918, 100.64/10 and IPv6 ULA: viewers on a LAN or site) or loopback (also 127/8 and ::1: every proxy on this machine); link-local never")
	o.originAddrs = fs.String("origin-addrs", "public", "addresses origin fetches (playlists, segments, keys, redirects) may reach besides those of the class of each channel's own configured origin: public, private (also RFC 1918, 100.64/10 and IPv6 ULA) or loopback (also 127/8 and ::1); checked on the address dialled; link-local (169.254/16, fe80::/10) never; http and https only, at most 5 redirects")
	fs.Var(&o.playerOrigins, "player-origin", "a web origin (scheme://host[:port]) whose pages may play through viewers' proxies (the broadcaster's player page); repeatable, at most 32; announced to proxies, which refuse other pages (the gateway's own dashboard always may)")
	o.seeders = fs.Int("seeders", 1, "proxies of each cell (rendition and locality group) that fetch each segment from the gateway (1-8)")
	o.busyTransfers = fs.Int("busy-transfers", 8, "segment transfers under way from which the gateway's uplink counts as saturated: it then refuses (503, RawFlow-Held) a proxy's fallback fetch of a segment its cell's root is getting, unless its player needs it within 1.5 s; 0: only --egress-limit says when")
	o.egressLimit = fs.String("egress-limit", "", "the gateway's uplink, e.g. 100Mbit or 12MB (per second), when known: segment bytes are paced to 85 % of it, a cell root's first, so that its link's queue stays short, and bytes started at 90 % of it within a second make the uplink count as saturated (see --busy-transfers); empty: estimated from the segment transfers' TCP connections, and segments paced below it while it is saturated")
	o.maxBytes = fs.String("max-channel-bytes", "256MiB", "bytes held per channel, split evenly across the renditions of a multivariant one (each keeps at least its newest segment)")
	o.peerKey = fs.String("peer-key", "", "secret that signs the peers' tracker tokens and the swarm keys that admit proxies to each other; empty: with --redis, one the gateways on that Redis share (stored there by the first), else random at start (peers rejoin after a restart)")
	o.signKey = fs.String("sign-key", "", "secret for signed viewer URLs: /live requests then need ?token= (see 'rawflow token'); empty: open")
	o.adminToken = fs.String("admin-token", "", "secret that guards /metrics, the stats API and the dashboard: requests need 'Authorization: Bearer TOKEN' (Prometheus) or HTTP Basic auth with TOKEN as the password, any user (browsers); players, proxies and /healthz, /readyz stay open; empty: all open (recommended: set it, or keep these routes off the internet)")
	o.price = fs.Float64("price-per-gb", 0.02, "what delivery costs the broadcaster per GB, for the money the dashboard says peers saved")
	o.currency = fs.String("currency", "USD", "currency code of --price-per-gb")
	o.drain = fs.Duration("drain", 0, "on SIGTERM or SIGINT: answer /readyz 503 and go on serving this long (so load balancers take the gateway out), then stop accepting and give in-flight responses up to 5s")
	o.logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	o.ice.register(fs)
	o.tls = addTLSFlags(fs)
	return fs, o
}

// channelConfigs reads the --channel and latency flags. A source "demo" stays as it is:
// demoSources starts the built-in source for it.
func (o *gatewayOpts) channelConfigs() ([]gateway.ChannelConfig, error) {
	var chs []gateway.ChannelConfig
	for _, c := range o.channels {
		name, src, ok := strings.Cut(c, "=")
		if !ok || name == "" || src == "" {
			return nil, fmt.Errorf("--channel %q: want NAME=SOURCE", c)
		}
		chs = append(chs, gateway.ChannelConfig{Name: name, Sources: strings.Split(src, ",")})
	}
	if err := o.latency.apply(chs); err != nil {
		return nil, err
	}
	return chs, nil
}

// demoSources gives each "demo" source a built-in live source of its own: one started by
// resolve's start, or, for a channel configured as in the last set in use, the one it had
// (so that a reload leaves that channel alone). A source started for a set the gateway
// then refuses runs, unused, until the gateway stops.
type demoSources struct {
	raw      map[string][]string // channel -> sources as configured
	resolved map[string][]string // channel -> sources with each demo's URL
}

// It returns the channels with their demo sources resolved and what d becomes once they are
// in use (not before: a set the gateway refuses must not count as the last).
func (d demoSources) resolve(chs []gateway.ChannelConfig, start func(*demoOrigin)) ([]gateway.ChannelConfig, demoSources, error) {
	raw, resolved := map[string][]string{}, map[string][]string{}
	out := make([]gateway.ChannelConfig, len(chs))
	for i, cc := range chs {
		raw[cc.Name] = cc.Sources
		out[i] = cc
		if prev, ok := d.raw[cc.Name]; ok && slices.Equal(prev, cc.Sources) {
			out[i].Sources = d.resolved[cc.Name]
		} else {
			out[i].Sources = slices.Clone(cc.Sources)
			for j, src := range cc.Sources {
				if src == "demo" {
					origin, err := newDemoOrigin()
					if err != nil {
						return nil, d, err
					}
					start(origin)
					out[i].Sources[j] = origin.url
				}
			}
		}
		resolved[cc.Name] = out[i].Sources
	}
	return out, demoSources{raw: raw, resolved: resolved}, nil
}

// fixedChannelFlags names the channel flags set on the command line (args) or in the
// environment, which take precedence over --config, so that a reload cannot change them.
func fixedChannelFlags(args []string) []string {
	fs, _ := gatewayFlags(io.Discard)
	_ = fs.Parse(args) // parsed at start already: cannot fail now
	var fixed []string
	for _, name := range []string{"channel", "latency", "channel-latency"} {
		_, inEnv := os.LookupEnv(envName(name))
		inArgs := false
		fs.Visit(func(f *flag.Flag) { inArgs = inArgs || f.Name == name })
		if inArgs || inEnv {
			fixed = append(fixed, "--"+name)
		}
	}
	return fixed
}

// notifyReload delivers SIGHUP; a variable so that tests can send their own.
var notifyReload = func() (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	return c, func() { signal.Stop(c) }
}

func runGateway(ctx context.Context, args []string, stderr io.Writer) error {
	fs, o := gatewayFlags(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *o.drain < 0 || *o.drain > 10*time.Minute {
		return fmt.Errorf("--drain %s: want 0-10m", *o.drain)
	}
	if *o.window < 3 {
		return fmt.Errorf("--window %d: want at least 3 segments (a channel whose latency mode needs more lists more)", *o.window)
	}
	if *o.price <= 0 {
		return fmt.Errorf("--price-per-gb %g: want a positive price", *o.price)
	}
	log, err := newLogger(stderr, *o.logLevel)
	if err != nil {
		return err
	}
	cfg := gateway.Config{WindowSegments: *o.window, Logger: log, SignKey: []byte(*o.signKey), PeerKey: []byte(*o.peerKey), AdminToken: *o.adminToken,
		TrackerRate: *o.trackerRate, JoinRate: *o.joinRate, PeerRate: *o.peerRate, PeersPerAddress: *o.peersPerAddr, Seeders: *o.seeders, SegmentDuration: *o.segDur,
		PlayerOrigins: o.playerOrigins, BusyTransfers: *o.busyTransfers}
	if cfg.BusyTransfers == 0 {
		cfg.BusyTransfers = -1 // never
	}
	if *o.egressLimit != "" {
		if cfg.EgressLimit, err = parseRate(*o.egressLimit); err != nil {
			return fmt.Errorf("--egress-limit: %w", err)
		}
	}
	if cfg.PeerAddrs, err = swarm.ParseAddrPolicy(*o.peerAddrs); err != nil {
		return fmt.Errorf("--peer-addrs: %w", err)
	}
	if cfg.OriginAddrs, err = swarm.ParseAddrPolicy(*o.originAddrs); err != nil {
		return fmt.Errorf("--origin-addrs: %w", err)
	}
	dash := web.Config{PricePerGB: *o.price, Currency: *o.currency}
	if err = dash.Validate(); err != nil {
		return err
	}
	if cfg.MaxChannelBytes, err = parseSize(*o.maxBytes); err != nil {
		return fmt.Errorf("--max-channel-bytes: %w", err)
	}
	chs, err := o.channelConfigs()
	if err != nil {
		return err
	}
	var demos demoSources
	var extra []func(context.Context) error
	if cfg.Channels, demos, err = demos.resolve(chs, func(d *demoOrigin) { extra = append(extra, d.run) }); err != nil {
		return err
	}
	if *o.trackerRate <= 0 {
		return fmt.Errorf("--tracker-rate %g: want a positive rate", *o.trackerRate)
	}
	if *o.joinRate <= 0 {
		return fmt.Errorf("--join-rate %g: want a positive rate", *o.joinRate)
	}
	if *o.peersPerAddr <= 0 {
		return fmt.Errorf("--peers-per-address %d: want a positive number of proxies", *o.peersPerAddr)
	}
	if *o.peerRate <= 0 {
		return fmt.Errorf("--peer-rate %g: want a positive rate", *o.peerRate)
	}
	if *o.seeders < 1 || *o.seeders > swarm.MaxSeeders {
		return fmt.Errorf("--seeders %d: want 1-%d", *o.seeders, swarm.MaxSeeders)
	}
	https, err := o.tls.open(log)
	if err != nil {
		return err
	}
	stunSrv, iceServers, err := o.ice.open(ctx, log)
	if err != nil {
		return err
	}
	cfg.ICEServers, cfg.TURNSecret = iceServers, []byte(*o.ice.turnSecret)
	if stunSrv != nil {
		defer stunSrv.close()
		cfg.STUNPort, cfg.STUNAltPort = stunSrv.port, stunSrv.altPort
		extra = append(extra, stunSrv.run)
	}
	reg, err := openRegistry(*o.redisURL, swarm.Options{TLSCAFile: *o.redisCA})
	if err != nil {
		return err
	}
	defer reg.Close()
	if r, ok := reg.(*swarm.Redis); ok && len(cfg.PeerKey) == 0 {
		// No --peer-key: the fleet's, so that its gateways' peers resume on any of them and
		// are admitted to each other's neighbour ports.
		kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cfg.PeerKey, err = r.FleetPeerKey(kctx)
		cancel()
		if err != nil {
			log.Warn("no fleet peer key from Redis: this gateway uses a random one (its proxies cannot fetch from other gateways' until it restarts with Redis up, or give --peer-key)", "err", err)
		}
	}
	g, err := newGatewayNode(*o.addr, cfg, reg)
	if err != nil {
		return err
	}
	g.drain, g.dashboard = *o.drain, dash
	if https != nil {
		g.useTLS(https.config)
		g.certFiles = https.files
		beside, err := https.runners(port(g.ln.Addr()))
		if err != nil {
			return err
		}
		extra = append(extra, beside...)
	}
	log.Info("gateway listening", "url", g.url, "channels", len(cfg.Channels), "redis", *o.redisURL != "")
	reload := func(ctx context.Context) error { return reloadChannels(ctx, args, g, &demos, log) }
	return runAll(ctx, append(extra, g.run, reload)...)
}

// reloadChannels sets the gateway's channels anew from the flags (args, the environment and
// --config read again) at each SIGHUP, until ctx ends, and reads a --tls-cert certificate
// again. Flags other than the channels' are read once, at start. A set that does not parse
// or validate is logged and changes nothing; so is a certificate that does not load.
func reloadChannels(ctx context.Context, args []string, g *gatewayNode, demos *demoSources, log *slog.Logger) error {
	hup, stop := notifyReload()
	defer stop()
	var wg sync.WaitGroup // the built-in sources started by reloads
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		}
		reloadCertificate(g, log)
		if fixed := fixedChannelFlags(args); len(fixed) > 0 {
			log.Warn("a reload reads the channels from --config only: these come from the command line or the environment and stay as they are", "flags", fixed)
		}
		fs, o := gatewayFlags(io.Discard)
		err := parseFlags(fs, args)
		var chs []gateway.ChannelConfig
		if err == nil {
			chs, err = o.channelConfigs()
		}
		var next demoSources
		if err == nil {
			chs, next, err = demos.resolve(chs, func(d *demoOrigin) { wg.Go(func() { _ = d.run(ctx) }) })
		}
		var added, changed, removed []string
		if err == nil {
			added, changed, removed, err = g.srv.SetChannels(chs)
		}
		if err != nil {
			log.Error("channels not reloaded; the gateway goes on with the ones it has", "err", err)
			continue
		}
		*demos = next
		log.Info("channels reloaded", "channels", len(chs), "added", added, "changed", changed, "removed", removed)
	}
}

// reloadCertificate reads the gateway's certificate files again, if it has any.
func reloadCertificate(g *gatewayNode, log *slog.Logger) {
	if g.certFiles == nil {
		return
	}
	if err := g.certFiles.Reload(); err != nil {
		log.Error("certificate not reloaded; the gateway goes on with the one it has", "err", err)
		return
	}
	log.Info("certificate reloaded", "not_after", g.certFiles.Certificate().Leaf.NotAfter)
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

// registry is the gateway's registry, which the process closes when done.
type registry interface {
	gateway.Registry
	Close() error
}

// openRegistry opens Redis when url is set, else the in-memory registry.
func openRegistry(url string, opts swarm.Options) (registry, error) {
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
