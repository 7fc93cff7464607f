package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/netutil"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/gateway/demosource"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/web"
)

// runAll runs fns concurrently until ctx ends or one of them fails; then it cancels the
// rest, waits for them and returns the first error.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, fn := range fns {
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				once.Do(func() { first = err })
			}
			cancel()
		})
	}
	wg.Wait()
	return first
}

// listen opens a TCP listener with a clear error.
func listen(addr, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ln, nil
}

// gatewayNode is a gateway and its dashboard bound to its listener.
type gatewayNode struct {
	srv *gateway.Server
	reg gateway.Registry
	ln  net.Listener
	url string // base URL, http://host:port
	// dashboard configures the dashboard (package web); its zero value means web's defaults.
	dashboard web.Config
	wrap      func(http.Handler) http.Handler // nil, or middleware around the node's handler
	// drain is how long the gateway goes on serving, not ready, once its context ends.
	drain time.Duration
}

func newGatewayNode(addr string, cfg gateway.Config, reg gateway.Registry) (*gatewayNode, error) {
	srv, err := gateway.New(cfg, reg)
	if err != nil {
		return nil, err
	}
	ln, err := listen(addr, "gateway listener")
	if err != nil {
		return nil, err
	}
	return &gatewayNode{srv: srv, reg: reg, ln: ln, url: "http://" + ln.Addr().String()}, nil
}

// handler is the node's one router: the gateway's routes (and its error handler) and the
// dashboard's pages and API, which read the gateway's channels and registry.
func (g *gatewayNode) handler() (http.Handler, error) {
	dash, err := web.New(dashboardStats{gw: g.srv, reg: g.reg}, g.dashboard)
	if err != nil {
		return nil, err
	}
	e := echo.New()
	g.srv.Register(e)
	dash.Register(e)
	if g.wrap != nil {
		return g.wrap(e), nil
	}
	return e, nil
}

func (g *gatewayNode) run(ctx context.Context) error {
	h, err := g.handler()
	if err != nil {
		return err
	}
	// A graceful stop: when ctx ends, /readyz fails at once and serving goes on for
	// g.drain, so load balancers take this gateway out before it goes; then it stops
	// accepting, lets in-flight responses finish (serve) and stops ingesting.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	drainer := func(rc context.Context) error {
		select {
		case <-rc.Done(): // a part failed: no drain
			return nil
		case <-ctx.Done():
		}
		g.srv.Drain()
		t := time.NewTimer(g.drain)
		defer t.Stop()
		select {
		case <-t.C:
		case <-rc.Done():
		}
		stop()
		return nil
	}
	return runAll(runCtx, g.srv.Run, drainer, func(ctx context.Context) error { return serve(ctx, g.ln, h) })
}

// maxNeighbourConns bounds the connections the neighbour port serves at once.
const maxNeighbourConns = 64

// peerNode is a proxy bound to its player and neighbour listeners.
type peerNode struct {
	proxy     *peerassist.Proxy
	player    net.Listener
	neighbour net.Listener // nil with NoUpload
	url       string       // player base URL
	handler   http.Handler // the player port's handler: the proxy's, unless a test wraps it
	// neighbourHandler is the neighbour port's handler: the proxy's, unless a test wraps it.
	neighbourHandler http.Handler
	killed           chan struct{} // closed by kill
	killOnce         sync.Once
}

// newPeerNode binds the listeners and builds the proxy. Unless cfg.AdvertiseAddr is set,
// the neighbour port is advertised as bound, with an unspecified host left for the
// gateway to fill in with the address it observes.
func newPeerNode(playerAddr, neighbourAddr string, cfg peerassist.Config) (*peerNode, error) {
	n := &peerNode{killed: make(chan struct{})}
	var err error
	if !cfg.NoUpload {
		if n.neighbour, err = listen(neighbourAddr, "neighbour listener"); err != nil {
			return nil, err
		}
		// Bounded connections: past the limit, new ones wait in the kernel's backlog.
		n.neighbour = netutil.LimitListener(n.neighbour, maxNeighbourConns)
		if cfg.AdvertiseAddr == "" {
			cfg.AdvertiseAddr = advertised(n.neighbour.Addr().(*net.TCPAddr))
		}
	}
	if n.proxy, err = peerassist.New(cfg); err != nil {
		n.close()
		return nil, err
	}
	if n.player, err = listen(playerAddr, "player listener"); err != nil {
		n.close()
		return nil, err
	}
	n.url = "http://" + n.player.Addr().String()
	n.handler = n.proxy.PlayerHandler()
	n.neighbourHandler = n.proxy.NeighbourHandler()
	return n, nil
}

func advertised(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return fmt.Sprintf(":%d", a.Port)
	}
	return a.String()
}

func (n *peerNode) close() {
	for _, ln := range []net.Listener{n.player, n.neighbour} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

func (n *peerNode) run(ctx context.Context) error {
	fns := []func(context.Context) error{n.proxy.Run,
		func(ctx context.Context) error { return serveUntil(ctx, n.player, n.handler, n.killed) }}
	if n.neighbour != nil {
		fns = append(fns, func(ctx context.Context) error {
			return serveUntil(ctx, n.neighbour, n.neighbourHandler, n.killed)
		})
	}
	return runAll(ctx, fns...)
}

// kill closes the node's servers at once, cutting every connection mid-transfer, as a
// crash would; run then ends (and the proxy leaves its swarms, which a crash would not).
func (n *peerNode) kill() { n.killOnce.Do(func() { close(n.killed) }) }

// demoOrigin is the built-in live source bound to a loopback listener.
type demoOrigin struct {
	src *demosource.Source
	ln  net.Listener
	url string // the live playlist URL
}

func newDemoOrigin() (*demoOrigin, error) {
	src, err := demosource.New(nil)
	if err != nil {
		return nil, err
	}
	ln, err := listen("127.0.0.1:0", "demo source listener")
	if err != nil {
		return nil, err
	}
	return &demoOrigin{src: src, ln: ln, url: "http://" + ln.Addr().String() + "/index.m3u8"}, nil
}

func (d *demoOrigin) run(ctx context.Context) error { return serve(ctx, d.ln, d.src) }
