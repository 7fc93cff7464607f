package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/acme"

	"github.com/rawflow/rawflow/gateway/certs"
	"github.com/rawflow/rawflow/internal/httpx"
)

// tlsOpts are the gateway's HTTPS flags: a certificate from files, or from an ACME CA.
type tlsOpts struct {
	cert, key, acmeDir, acmeEmail, acmeCache, acmeCA, httpAddr *string
	acmeDomains                                                listFlag
}

func addTLSFlags(fs *flag.FlagSet) *tlsOpts {
	o := &tlsOpts{}
	o.cert = fs.String("tls-cert", "", "PEM file of the certificate (and intermediates, leaf first) to serve HTTPS on --listen with (read again on SIGHUP); with --tls-key")
	o.key = fs.String("tls-key", "", "PEM file of --tls-cert's private key")
	fs.Var(&o.acmeDomains, "acme-domain", "a DNS name to serve HTTPS for on --listen, with certificates obtained and renewed over ACME (TLS-ALPN-01 on --listen, HTTP-01 on --http-listen); repeatable; agrees to the ACME CA's terms of service")
	o.acmeDir = fs.String("acme-dir", acme.LetsEncryptURL, "ACME directory URL (a private CA's, such as step-ca's)")
	o.acmeEmail = fs.String("acme-email", "", "contact address for the ACME account (the CA's notices); empty: none")
	o.acmeCache = fs.String("acme-cache", "", "directory where the ACME account key and certificates persist (keep it across restarts); empty: rawflow/acme in the user's cache directory ($XDG_CACHE_HOME or ~/.cache)")
	o.acmeCA = fs.String("acme-ca", "", "PEM file of CAs to trust for the ACME server's own certificate, besides the system's (a private ACME server)")
	o.httpAddr = fs.String("http-listen", "", "with HTTPS: also listen for plain HTTP here (e.g. :80), answering ACME HTTP-01 challenges and redirecting everything else to https")
	return o
}

// gatewayTLS is the gateway's HTTPS: its listener's configuration and what runs beside it.
type gatewayTLS struct {
	config   *tls.Config
	files    *certs.Files // the certificate from files (reloaded on SIGHUP); nil with ACME
	acme     *certs.ACME  // nil with files
	httpAddr string       // the plain port, or ""
}

// open checks the flags and loads the certificate or sets up ACME. Without any of the
// flags it returns nil: the gateway serves plain HTTP.
func (o *tlsOpts) open(log *slog.Logger) (*gatewayTLS, error) {
	files, withACME := *o.cert != "" || *o.key != "", len(o.acmeDomains) > 0
	switch {
	case files && withACME:
		return nil, errors.New("--tls-cert and --acme-domain: give one source of certificates")
	case !withACME && (*o.acmeEmail != "" || *o.acmeCache != "" || *o.acmeCA != "" || *o.acmeDir != acme.LetsEncryptURL):
		return nil, errors.New("--acme-dir, --acme-email, --acme-cache and --acme-ca go with --acme-domain")
	case !files && !withACME && *o.httpAddr != "":
		return nil, errors.New("--http-listen is the plain port beside HTTPS: give --tls-cert or --acme-domain (without them --listen serves plain HTTP)")
	case files:
		f, err := certs.LoadFiles(*o.cert, *o.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		return &gatewayTLS{config: f.TLSConfig(), files: f, httpAddr: *o.httpAddr}, nil
	case withACME:
		a, err := o.openACME(log)
		if err != nil {
			return nil, err
		}
		return &gatewayTLS{config: a.TLSConfig(), acme: a, httpAddr: *o.httpAddr}, nil
	}
	return nil, nil
}

func (o *tlsOpts) openACME(log *slog.Logger) (*certs.ACME, error) {
	cache := *o.acmeCache
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("--acme-cache: none given, and %w", err)
		}
		cache = filepath.Join(dir, "rawflow", "acme")
	}
	roots, err := httpx.Roots(*o.acmeCA)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca: %w", err)
	}
	a, err := certs.NewACME(certs.ACMEConfig{Domains: o.acmeDomains, DirectoryURL: *o.acmeDir, Email: *o.acmeEmail,
		CacheDir: cache, Roots: roots, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--acme-domain: %w", err)
	}
	return a, nil
}

// runners binds the plain port, if any, and returns what runs beside the HTTPS listener on
// httpsPort: the plain port (ACME's HTTP-01 challenges; a redirect to https for the rest)
// and ACME's first certificates.
func (t *gatewayTLS) runners(httpsPort string) ([]func(context.Context) error, error) {
	var fns []func(context.Context) error
	if t.acme != nil {
		fns = append(fns, t.acme.Run)
	}
	if t.httpAddr == "" {
		return fns, nil
	}
	ln, err := listen(t.httpAddr, "--http-listen")
	if err != nil {
		return nil, err
	}
	h := certs.Redirect(httpsPort)
	if t.acme != nil {
		h = t.acme.HTTPHandler(h)
	}
	return append(fns, func(ctx context.Context) error { return httpx.Serve(ctx, ln, h, nil) }), nil
}

// port returns the port of a listener's address.
func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
