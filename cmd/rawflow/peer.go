package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/peerassist"
)

func runPeer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("peer", "The peer-assist proxy for one viewer machine: play http://LISTEN/live/CHANNEL/index.m3u8.", stderr)
	gw := fs.String("gateway", "", "gateway base URL, e.g. http://gateway:8080 or https://gateway.example (required); an https gateway's certificate is verified")
	gatewayCA := fs.String("gateway-ca", "", "PEM file of CAs to trust for an https:// gateway, besides the system's (a private CA)")
	playerAddr := fs.String("listen", "127.0.0.1:8081", "player port: where the player plays from")
	neighbourAddr := fs.String("peer-listen", ":8082", "neighbour port: where other proxies fetch from")
	advertise := fs.String("advertise", "", "neighbour address to advertise (host:port); default: the neighbour port, as the gateway sees this machine")
	group := fs.String("group", "", "locality group (site) name")
	cacheSize := fs.String("cache-size", "256MiB", "segment cache size")
	uploadLimit := fs.String("upload-limit", "", "cap on upload to other viewers, e.g. 8Mbit or 1MiB (per second); empty: none")
	maxUploads := fs.Int("max-uploads", 8, "uploads to other viewers at once (1-256); more wait up to 1 s for a slot")
	noUpload := fs.Bool("no-upload", false, "never upload to other viewers (leech)")
	var origins listFlag
	fs.Var(&origins, "allow-origin", "a web origin (scheme://host[:port]) whose pages may play through the player port; repeatable; * allows any page. The gateway's own origin, and those it announces, always may")
	grace := fs.Duration("outage-grace", 20*time.Second, "while the gateway cannot be reached, serve the last live playlist for this long after it last served it (at least 3 target durations)")
	transport := fs.String("peer-transport", peerassist.TransportAuto, "how to reach other viewers: auto (TCP where their neighbour port can be dialled, else WebRTC through NATs, set up via the gateway), direct (TCP only) or ice (WebRTC, encrypted, for every neighbour that takes it)")
	portMapping := fs.Bool("port-mapping", true, "when the neighbour port is bound on a private or unspecified address (behind a home router, say), ask the router to forward it (NAT-PMP, UPnP IGD) and advertise the router's public address and port; --port-mapping=false: never")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	routeStdLog(log)
	if *maxUploads < 1 || *maxUploads > 256 {
		return fmt.Errorf("--max-uploads %d: want 1-256", *maxUploads)
	}
	cfg := peerassist.Config{GatewayURL: *gw, AdvertiseAddr: *advertise, Group: *group, NoUpload: *noUpload,
		MaxUploads: *maxUploads, Logger: log, AllowOrigins: origins, OutageGrace: *grace, PeerTransport: *transport, NoPortMapping: !*portMapping}
	if *grace <= 0 {
		return fmt.Errorf("--outage-grace %s: want a positive duration", *grace)
	}
	if cfg.GatewayRoots, err = gatewayRoots(*gw, *gatewayCA); err != nil {
		return err
	}
	if cfg.CacheBytes, err = parseSize(*cacheSize); err != nil {
		return fmt.Errorf("--cache-size: %w", err)
	}
	if *uploadLimit != "" {
		if cfg.UploadLimit, err = parseRate(*uploadLimit); err != nil {
			return fmt.Errorf("--upload-limit: %w", err)
		}
	}
	n, err := newPeerNode(ctx, *playerAddr, *neighbourAddr, cfg)
	if err != nil {
		return err
	}
	log.Info("peer-assist proxy listening", "player", n.url, "gateway", *gw)
	return n.run(ctx)
}

// gatewayRoots returns the roots a proxy trusts for its gateway: the system's, plus caFile's
// when set, which is only for an https:// gateway.
func gatewayRoots(gatewayURL, caFile string) (*x509.CertPool, error) {
	if caFile != "" && !strings.HasPrefix(strings.ToLower(gatewayURL), "https://") {
		return nil, errors.New("--gateway-ca is for an https:// --gateway")
	}
	roots, err := httpx.Roots(caFile)
	if err != nil {
		return nil, fmt.Errorf("--gateway-ca: %w", err)
	}
	return roots, nil
}
