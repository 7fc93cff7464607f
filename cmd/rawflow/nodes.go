package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/gateway/certs"
	"github.com/rawflow/rawflow/gateway/demosource"
	"github.com/rawflow/rawflow/internal/httpx"
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

// listen opens a TCP listener with a clear error. It takes no context: the constructors
// that bind (newGatewayNode, newDemoOrigin) have none to give, binding at start-up before
// anything runs, and the tests call them as they are.
func listen(addr, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr) //nolint:noctx // bound once at start-up by constructors without a context (see above)
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
	url string // base URL, http://host:port (https:// with tls)
	// tls, when set, makes the listener serve HTTPS with it (useTLS); nil: plain HTTP.
	tls *tls.Config
	// certFiles is the certificate tls serves when it comes from files (reloaded on
	// SIGHUP); nil otherwise.
	certFiles *certs.Files
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

// useTLS makes the node serve HTTPS with cfg.
func (g *gatewayNode) useTLS(cfg *tls.Config) {
	g.tls = cfg
	g.url = "https://" + g.ln.Addr().String()
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
	return runAll(runCtx, g.srv.Run, drainer, func(ctx context.Context) error { return httpx.ServeTLS(ctx, g.ln, h, g.tls, nil) })
}

// peerNode is a proxy on its two ports (peerassist.Node), with each port's handler in a
// field that a test may wrap before run.
type peerNode struct {
	node      *peerassist.Node
	proxy     *peerassist.Proxy // node.Proxy
	url       string            // player base URL, node.URL
	neighbour net.Listener      // node.Neighbour: nil with NoUpload
	handler   http.Handler      // the player port's handler: the proxy's, unless a test wraps it
	// neighbourHandler is the neighbour port's handler: the proxy's, unless a test wraps it.
	neighbourHandler http.Handler
}

// newPeerNode binds the listeners and builds the proxy (peerassist.Listen).
func newPeerNode(ctx context.Context, playerAddr, neighbourAddr string, cfg peerassist.Config) (*peerNode, error) {
	node, err := peerassist.Listen(ctx, playerAddr, neighbourAddr, cfg)
	if err != nil {
		return nil, err
	}
	return &peerNode{node: node, proxy: node.Proxy, url: node.URL, neighbour: node.Neighbour,
		handler: node.Proxy.PlayerHandler(), neighbourHandler: node.Proxy.NeighbourHandler()}, nil
}

// run serves the node with its handlers until ctx ends (peerassist.Node.Serve).
func (n *peerNode) run(ctx context.Context) error {
	return n.node.Serve(ctx, n.handler, n.neighbourHandler)
}

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

func (d *demoOrigin) run(ctx context.Context) error { return httpx.Serve(ctx, d.ln, d.src, nil) }
