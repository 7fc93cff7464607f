package peerassist

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// Peer links (see swarm/peerlink.go). The neighbour port speaks TLS 1.3 with a certificate
// the proxy made at start, whose fingerprint the gateway passes on in plans; a proxy
// dialling a source accepts that source's certificate only, and signs each request with
// its channel's swarm key; the neighbour port serves nobody else.

// NewNeighbourCert returns a fresh self-signed certificate (ECDSA P-256) for a neighbour
// port, and its fingerprint (swarm.Fingerprint). It lives in memory only: a proxy that
// starts again has a new one, and subscribes with it.
func NewNeighbourCert() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "rawflow neighbour"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), // pinned: its dates are not checked
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, swarm.Fingerprint(der), nil
}

// NeighbourTLS returns the TLS configuration of the neighbour port: TLS 1.3, HTTP/1.1 (one
// transfer per kept-alive connection, as the upload bounds count them), the proxy's
// certificate.
func (p *Proxy) NeighbourTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"}}
}

// CertFingerprint returns the fingerprint of the neighbour port's certificate, as the proxy
// subscribes with it.
func (p *Proxy) CertFingerprint() string { return p.certFP }

// errCertMismatch: the neighbour presented a certificate other than the one its plan names.
var errCertMismatch = errors.New("neighbour certificate is not the one the gateway named")

// PinnedTLS returns the TLS configuration of a client of the neighbour port whose
// certificate has fingerprint fp: that certificate and no other, whoever signed it; the
// handshake fails before a byte of the request is sent otherwise.
func PinnedTLS(fp string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"http/1.1"},
		// The chain is not verified against any authority, nor are its dates or names: the
		// pin below is the check.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || swarm.Fingerprint(cs.PeerCertificates[0].Raw) != fp {
				return errCertMismatch
			}
			return nil
		},
	}
}

// maxPeerClients bounds the neighbour clients a proxy keeps (peerClients).
const maxPeerClients = 64

// peerClients hands out one HTTP client per neighbour certificate, so that a kept-alive
// connection is reused only for the certificate it was verified for (an address may change
// hands). Past maxPeerClients, all are dropped and their idle connections closed.
type peerClients struct {
	newClient func(*tls.Config) *http.Client

	mu     sync.Mutex // guards byCert
	byCert map[string]*http.Client
}

// get returns the client pinned to the certificate with fingerprint fp.
func (pc *peerClients) get(fp string) *http.Client {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c := pc.byCert[fp]; c != nil {
		return c
	}
	if len(pc.byCert) >= maxPeerClients {
		for _, c := range pc.byCert {
			c.CloseIdleConnections()
		}
		clear(pc.byCert)
	}
	c := pc.newClient(PinnedTLS(fp))
	pc.byCert[fp] = c
	return c
}

// neighbourRequest prepares a request to a neighbour's neighbour port for path: https, with
// the member's swarm credential.
func (p *Proxy) neighbourRequest(req *http.Request, m *member) error {
	v, ok := swarm.SignNeighbourRequest(m.swarmKey, m.channel, req.URL.EscapedPath(), p.cfg.Now())
	if !ok {
		return fmt.Errorf("%w: no swarm key for now", errNotAdmitted)
	}
	req.Header.Set(swarm.NeighbourAuthHeader, v)
	return nil
}

// errNotAdmitted: this proxy holds no swarm key of the moment (the gateway has not
// admitted it yet, or not lately).
var errNotAdmitted = errors.New("not admitted to the swarm")

// admitted checks a neighbour request's credential (swarm.CheckNeighbourRequest against
// the keys of the member of its channel) and returns that member; else the 401 or 403 to
// answer, counted (Status.NeighbourRefused).
func (p *Proxy) admitted(c echo.Context) (*member, error) {
	r := c.Request()
	channel, err := swarm.CheckNeighbourRequest(p.swarmKey, r.Header.Get(swarm.NeighbourAuthHeader), r.URL.EscapedPath(), p.cfg.Now())
	switch {
	case errors.Is(err, swarm.ErrNoCredential):
		p.neighbourRefused.Add(1)
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, swarm.NeighbourAuthHeader)
		return nil, echo.NewHTTPError(http.StatusUnauthorized, "no swarm credential")
	case err != nil:
		p.neighbourRefused.Add(1)
		return nil, echo.NewHTTPError(http.StatusForbidden, "swarm credential refused")
	}
	return p.existingMember(channel), nil // CheckNeighbourRequest found its key: it exists
}

// swarmKey returns the swarm key of channel for window, as the gateway gave it.
func (p *Proxy) swarmKey(channel string, window int64) (swarm.ChannelKey, bool) {
	if m := p.existingMember(channel); m != nil {
		return m.swarmKey(window)
	}
	return swarm.ChannelKey{}, false
}

// existingMember returns the channel's membership; nil when the proxy has none.
func (p *Proxy) existingMember(channel string) *member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.members[channel]
}
