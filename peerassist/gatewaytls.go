package peerassist

// The gateway's certificate. Every request to an https:// gateway (event streams, reports,
// playlists, segments) goes through one transport, which verifies the gateway's
// certificate against Config.GatewayRoots; a gateway the proxy does not trust serves it
// nothing. Such refusals are counted and logged now and then, with what to do about them.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// ErrGatewayCertificate reports a gateway whose certificate the proxy does not trust
// (unknown authority, wrong name, expired): the proxy refuses to fetch anything from it.
var ErrGatewayCertificate = errors.New("the gateway's certificate is not trusted")

// certGuard is the gateway transport: it classifies certificate failures (the error wraps
// ErrGatewayCertificate), counts them (Status.GatewayCertRefused) and logs the first and
// every 100th.
type certGuard struct {
	rt http.RoundTripper
	p  *Proxy
}

func (g certGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.rt.RoundTrip(req)
	if err != nil && badCertificate(err) {
		if g.p.certRefused.Add(1)%100 == 1 {
			g.p.log.Error("refusing the gateway: its certificate does not verify (give the CA that signed it with --gateway-ca, or fix the gateway's certificate)",
				"gateway", g.p.gateway.Host, "err", err)
		}
		return nil, fmt.Errorf("%w: %w", ErrGatewayCertificate, err)
	}
	return resp, err
}

// badCertificate reports whether err is a failure to verify the peer's certificate.
func badCertificate(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}
