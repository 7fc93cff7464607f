package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"

	"github.com/rawflow/rawflow/gateway/certs"
	"github.com/rawflow/rawflow/internal/httpx"
)

// tlsOpts are the gateway's HTTPS flags: a certificate from files.
type tlsOpts struct {
	cert, key, httpAddr *string
}

func addTLSFlags(fs *flag.FlagSet) *tlsOpts {
	o := &tlsOpts{}
	o.cert = fs.String("tls-cert", "", "PEM file of the certificate (and intermediates, leaf first) to serve HTTPS on --listen with (read again on SIGHUP); with --tls-key")
	o.key = fs.String("tls-key", "", "PEM file of --tls-cert's private key")
	o.httpAddr = fs.String("http-listen", "", "with HTTPS: also listen for plain HTTP here (e.g. :80), redirecting to https")
	return o
}

// gatewayTLS is the gateway's HTTPS: its listener's configuration and what runs beside it.
type gatewayTLS struct {
	config   *tls.Config
	files    *certs.Files // the certificate from files (reloaded on SIGHUP)
	httpAddr string       // the plain port, or ""
}

// open checks the flags and loads the certificate. Without any of the flags it returns
// nil: the gateway serves plain HTTP.
func (o *tlsOpts) open() (*gatewayTLS, error) {
	files := *o.cert != "" || *o.key != ""
	switch {
	case !files && *o.httpAddr != "":
		return nil, errors.New("--http-listen is the plain port beside HTTPS: give --tls-cert (without it --listen serves plain HTTP)")
	case files:
		f, err := certs.LoadFiles(*o.cert, *o.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		return &gatewayTLS{config: f.TLSConfig(), files: f, httpAddr: *o.httpAddr}, nil
	}
	return nil, nil
}

// runners binds the plain port, if any, and returns what runs beside the HTTPS listener on
// httpsPort: the plain port (a redirect to https).
func (t *gatewayTLS) runners(httpsPort string) ([]func(context.Context) error, error) {
	var fns []func(context.Context) error
	if t.httpAddr == "" {
		return fns, nil
	}
	ln, err := listen(t.httpAddr, "--http-listen")
	if err != nil {
		return nil, err
	}
	h := certs.Redirect(httpsPort)
	return append(fns, func(ctx context.Context) error { return httpx.Serve(ctx, ln, h, nil) }), nil
}

// port returns the port of a listener's address.
func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
