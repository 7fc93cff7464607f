package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACMEConfig configures ACME. The zero value of every field but Domains and CacheDir means
// its default.
type ACMEConfig struct {
	// Domains are the names to obtain certificates for, and the only ones served: a client
	// that asks for another name (or none: an IP address) fails its handshake. DNS names
	// with at least one dot; ACME here does not certify IP addresses.
	Domains []string
	// DirectoryURL is the ACME server's directory (https). Default: Let's Encrypt's
	// production one (acme.LetsEncryptURL).
	DirectoryURL string
	// Email is the ACME account's contact, for the CA's notices; empty means none.
	Email string
	// CacheDir is where the account key and the certificates persist across restarts
	// (created with mode 0700 when missing): without it every start would ask the CA
	// again, and public CAs limit how often.
	CacheDir string
	// Roots are the certificate authorities trusted for the ACME server's own
	// certificate (a private ACME server's); nil means the system's.
	Roots *x509.CertPool
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports the first problem with the configuration, if any.
func (c *ACMEConfig) Validate() error {
	if len(c.Domains) == 0 {
		return errors.New("ACME: no domain to obtain a certificate for")
	}
	for _, d := range c.Domains {
		if err := checkDomain(d); err != nil {
			return err
		}
	}
	if c.CacheDir == "" {
		return errors.New("ACME: no cache directory for the account key and certificates")
	}
	if c.DirectoryURL != "" {
		u, err := url.Parse(c.DirectoryURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("ACME directory %q: want an https:// URL", c.DirectoryURL)
		}
	}
	return nil
}

// checkDomain accepts a DNS name with a dot (as a browser sends it in SNI), not an IP.
func checkDomain(d string) error {
	switch {
	case net.ParseIP(strings.Trim(d, "[]")) != nil:
		return fmt.Errorf("ACME domain %q: an IP address; give a DNS name, or a certificate with --tls-cert", d)
	case !strings.Contains(strings.Trim(d, "."), "."):
		return fmt.Errorf("ACME domain %q: want a DNS name with a dot, as clients send it", d)
	case strings.TrimLeft(strings.ToLower(d), "abcdefghijklmnopqrstuvwxyz0123456789.-") != "":
		return fmt.Errorf("ACME domain %q: want letters, digits, '-' and '.' (punycode for other names)", d)
	}
	return nil
}

// ACME obtains certificates from an ACME CA when first needed (at Run's start, then at a
// handshake that finds none), keeps them in the cache directory and renews each once a
// third of its lifetime is left (autocert's default), without a restart.
type ACME struct {
	m       *autocert.Manager
	domains []string
	log     *slog.Logger
}

// acmeTimeout bounds each request to the ACME server.
const acmeTimeout = 30 * time.Second

// NewACME sets up ACME from cfg. It contacts nothing: Run and the handshakes do. By using
// it the operator agrees to the CA's terms of service.
func NewACME(cfg ACMEConfig) (*ACME, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DirectoryURL == "" {
		cfg.DirectoryURL = acme.LetsEncryptURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12}
	log := cfg.Logger.With("component", "acme")
	domains := make([]string, len(cfg.Domains))
	for i, d := range cfg.Domains {
		domains[i] = strings.ToLower(strings.TrimSuffix(d, "."))
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      loggingCache{Cache: autocert.DirCache(cfg.CacheDir), log: log},
		HostPolicy: autocert.HostWhitelist(domains...),
		Email:      cfg.Email,
		Client: &acme.Client{DirectoryURL: cfg.DirectoryURL, UserAgent: "rawflow",
			HTTPClient: &http.Client{Timeout: acmeTimeout, Transport: t}},
	}
	return &ACME{m: m, domains: domains, log: log}, nil
}

// TLSConfig returns the HTTPS listener's configuration: the certificate of the name the
// client asks for, HTTP/2 and HTTP/1.1, and the TLS-ALPN-01 challenge.
func (a *ACME) TLSConfig() *tls.Config {
	c := a.m.TLSConfig()
	c.MinVersion = tls.VersionTLS12
	return c
}

// HTTPHandler answers the CA's HTTP-01 challenges on a plain HTTP port, and passes every
// other request to fallback (nil: a redirect to https on the default port).
func (a *ACME) HTTPHandler(fallback http.Handler) http.Handler { return a.m.HTTPHandler(fallback) }

// Run obtains each domain's certificate (from the cache, or from the CA) at once, so that
// the first viewers do not wait for it and a failure shows in the log at start; a domain
// that failed is tried again at its first handshake. It returns when ctx ends.
func (a *ACME) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() { // GetCertificate takes no context; autocert bounds it (5 minutes)
		defer close(done)
		for _, d := range a.domains {
			c, err := a.m.GetCertificate(helloFor(d))
			if err != nil {
				a.log.Error("no certificate yet; tried again at the first handshake for it", "domain", d, "err", err)
				continue
			}
			a.log.Info("certificate ready", "domain", d, "not_after", c.Leaf.NotAfter, "issuer", c.Leaf.Issuer.String())
		}
	}()
	select {
	case <-ctx.Done():
	case <-done:
		<-ctx.Done()
	}
	return nil
}

// helloFor is a handshake's hello from a modern client for domain: it gets the ECDSA
// certificate that real clients get (autocert keeps an RSA one for clients without ECDSA).
func helloFor(domain string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:        domain,
		CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:   []tls.CurveID{tls.CurveP256},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
	}
}

// loggingCache is the cache directory, logging each certificate stored: issued or renewed.
type loggingCache struct {
	autocert.Cache
	log *slog.Logger
}

func (c loggingCache) Put(ctx context.Context, key string, data []byte) error {
	err := c.Cache.Put(ctx, key, data)
	switch {
	case err != nil:
		c.log.Error("could not store in the ACME cache directory", "key", key, "err", err)
	case !strings.Contains(key, "acme_account") && !strings.HasSuffix(key, "+token"): // not the account key, not a challenge's
		c.log.Info("certificate obtained from the CA and stored", "key", key)
	}
	return err
}
