package httpx

import (
	"context"
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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
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
