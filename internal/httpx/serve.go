package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// shutdownGrace bounds how long Serve waits for in-flight responses once its context ends.
const shutdownGrace = 5 * time.Second

// Serve serves h on ln until ctx ends, then shuts down gracefully: it stops accepting and
// lets in-flight responses finish, for shutdownGrace at most. When kill is closed first
// (nil: never), the server closes at once, cutting the connections it has, a crash as far
// as its clients can tell. Either way it closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, kill <-chan struct{}) error {
	return ServeTLS(ctx, ln, h, nil, kill)
}

// ServeTLS is Serve over TLS with cfg (nil: plain HTTP, as Serve). HTTP/2 is offered when
// cfg's NextProtos list "h2" (or list nothing). The TLS handshake is bounded like a request
// header (ReadHeaderTimeout).
func ServeTLS(ctx context.Context, ln net.Listener, h http.Handler, cfg *tls.Config, kill <-chan struct{}) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second, TLSConfig: cfg,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
	errc := make(chan error, 1)
	go func() {
		if cfg != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificates come from cfg
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-kill:
		_ = srv.Close()
	case <-ctx.Done():
		// ctx has ended: the grace period runs on a context of its own.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// connKey is the request context's key of the connection a request came on.
type connKey struct{}

// Conn returns the network connection a request served by Serve or ServeTLS came on (the
// TCP connection under TLS), or nil.
func Conn(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}
