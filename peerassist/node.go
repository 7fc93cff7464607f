package peerassist

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"golang.org/x/net/netutil"

	"github.com/rawflow/rawflow/internal/httpx"
)

// maxNeighbourConns bounds the connections the neighbour port serves at once; past it, new
// ones wait in the kernel's backlog.
const maxNeighbourConns = 256

// Node is a Proxy bound to its two ports: the player port, which players play, and the
// neighbour port, which other proxies fetch from. Listen builds one; Run serves it.
type Node struct {
	// Proxy is the proxy the two ports serve.
	Proxy *Proxy
	// URL is the player port's base URL, http://host:port.
	URL string
	// Player is the player port's listener.
	Player net.Listener
	// Neighbour is the neighbour port's listener (TCP: Run serves TLS on it, with
	// Proxy.NeighbourTLS); nil with Config.NoUpload.
	Neighbour net.Listener

	killed   chan struct{} // closed by Kill
	killOnce sync.Once
	mapPort  uint16 // the neighbour port to have the router forward (portmap.go); 0: none
}

// Listen binds the player port on playerAddr and, unless cfg.NoUpload, the neighbour port
// on neighbourAddr, and builds the proxy. Unless cfg.AdvertiseAddr is set, the neighbour
// port is advertised as bound, an unspecified host left for the gateway to fill in with the
// address it observes; and when it is bound on an unspecified or private address (this
// machine may be behind a NAT), Run asks the router to forward it (portmap.go) unless
// cfg.NoPortMapping.
func Listen(ctx context.Context, playerAddr, neighbourAddr string, cfg Config) (*Node, error) {
	var lc net.ListenConfig
	return listen(ctx, func() (net.Listener, error) { return lc.Listen(ctx, "tcp", playerAddr) }, neighbourAddr, cfg)
}

// ListenPlayer is Listen with the player port's listener given (the benchmark's in-memory
// one, package memnet); the node closes it.
func ListenPlayer(ctx context.Context, player net.Listener, neighbourAddr string, cfg Config) (*Node, error) {
	n, err := listen(ctx, func() (net.Listener, error) { return player, nil }, neighbourAddr, cfg)
	if err != nil {
		_ = player.Close()
	}
	return n, err
}

func listen(ctx context.Context, player func() (net.Listener, error), neighbourAddr string, cfg Config) (*Node, error) {
	n := &Node{killed: make(chan struct{})}
	var lc net.ListenConfig
	if !cfg.NoUpload && cfg.PeerTransport != TransportICE { // over WebRTC only: no port to open
		ln, err := lc.Listen(ctx, "tcp", neighbourAddr)
		if err != nil {
			return nil, fmt.Errorf("neighbour listener: %w", err)
		}
		n.Neighbour = netutil.LimitListener(ln, maxNeighbourConns)
		if cfg.AdvertiseAddr == "" {
			a := ln.Addr().(*net.TCPAddr)
			cfg.AdvertiseAddr = advertised(a)
			if !cfg.NoPortMapping && behindNAT(a.IP) {
				n.mapPort = uint16(a.Port)
			}
		}
	}
	var err error
	if n.Proxy, err = New(cfg); err != nil {
		n.close()
		return nil, err
	}
	if n.Player, err = player(); err != nil {
		n.close()
		return nil, fmt.Errorf("player listener: %w", err)
	}
	n.URL = "http://" + n.Player.Addr().String()
	return n, nil
}

// advertised is the neighbour address to advertise for a port bound on a: with an
// unspecified host, only the port.
func advertised(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return fmt.Sprintf(":%d", a.Port)
	}
	return a.String()
}

// close closes the listeners of a node that will not run.
func (n *Node) close() {
	for _, ln := range []net.Listener{n.Player, n.Neighbour} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// Run serves the proxy's handlers on the two ports and runs the proxy until ctx ends, then
// shuts the servers down gracefully and leaves every swarm; or until Kill.
func (n *Node) Run(ctx context.Context) error {
	return n.Serve(ctx, n.Proxy.PlayerHandler(), n.Proxy.NeighbourHandler())
}

// Serve is Run with the two ports' handlers given (neighbour is unused without a neighbour
// port): a test passes the proxy's own, wrapped. When one part stops (a server fails, or
// Kill), the others are stopped too; Serve returns the first error.
func (n *Node) Serve(ctx context.Context, player, neighbour http.Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := []func(context.Context) error{n.Proxy.Run,
		func(ctx context.Context) error { return httpx.Serve(ctx, n.Player, player, n.killed) }}
	if n.Neighbour != nil {
		parts = append(parts, func(ctx context.Context) error {
			return httpx.ServeTLS(ctx, n.Neighbour, neighbour, n.Proxy.NeighbourTLS(), n.killed)
		})
	}
	if n.mapPort != 0 {
		parts = append(parts, func(ctx context.Context) error { n.Proxy.keepPortMapping(ctx, n.mapPort); return nil })
	}
	if ln := n.Proxy.LinkListener(); ln != nil && !n.Proxy.cfg.NoUpload { // the same handler, over WebRTC (links.go)
		parts = append(parts, func(ctx context.Context) error {
			err := httpx.Serve(ctx, ln, neighbour, n.killed)
			if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
				err = nil // the proxy closed its links as it stopped
			}
			return err
		})
	}
	errs := make(chan error, len(parts))
	var wg sync.WaitGroup
	for _, run := range parts {
		wg.Go(func() {
			errs <- run(ctx)
			cancel()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Kill closes both servers at once, cutting every connection mid-transfer, as a crash
// would; Run then returns (and the proxy leaves its swarms, which a crash would not).
func (n *Node) Kill() { n.killOnce.Do(func() { close(n.killed) }) }
