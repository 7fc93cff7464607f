package peerassist

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// TLS on the direct path. A proxy's neighbour port speaks TLS 1.3 with a certificate the
// proxy makes at start and keeps in memory; it subscribes with the certificate's
// fingerprint (swarm.Subscription.Cert), and plans name each source with it
// (swarm.Source.Cert). A proxy dialling a source accepts that certificate and no other:
// the gateway, which it trusts for plans and digests already, vouches for it, so no
// authority signs it and nothing on the path can read or change a transfer. Over a
// WebRTC link the data channel's DTLS does the same (package peerlink). A source whose
// plan names no certificate (a neighbour port that is not a RawFlow proxy's) is dialled in
// plain HTTP; its bytes are still checked against the digests.
//
// The connections are the HTTP transport's, kept per neighbour (peerHost): a handshake per
// connection opened, not per transfer.

// errCertMismatch: the neighbour presented a certificate other than the one its plan names.
var errCertMismatch = errors.New("neighbour's certificate is not the one the gateway named")

// newNeighbourCert returns a fresh self-signed certificate (Ed25519: the cheapest
// signature to make and check in a handshake) for a neighbour port, and its fingerprint.
func newNeighbourCert() (tls.Certificate, string, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "rawflow neighbour"},
		// Pinned by fingerprint: its dates and names are not checked.
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, swarm.CertFingerprint(der), nil
}

// NeighbourTLS returns the TLS configuration of the neighbour port: TLS 1.3, HTTP/1.1 (one
// transfer per connection at a time, as the upload slots count them), the proxy's
// certificate. Nil for a proxy that uploads nothing.
func (p *Proxy) NeighbourTLS() *tls.Config {
	if p.certFP == "" {
		return nil
	}
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"},
		CurvePreferences: neighbourCurves, DynamicRecordSizingDisabled: true}
}

// neighbourCurves is the key exchange of neighbour links: X25519 alone. Go's default adds
// a post-quantum hybrid (ML-KEM-768), which makes a handshake about 1.8 times dearer
// (BenchmarkNeighbourHandshake) and guards a live stream's segments against a recording
// decrypted years later, which is not a threat they face. A thousand viewers joining at once
// open several thousand neighbour connections within seconds.
var neighbourCurves = []tls.CurveID{tls.X25519}

// CertFingerprint returns the fingerprint of the neighbour port's certificate, as the
// proxy subscribes with it ("" for a proxy that uploads nothing).
func (p *Proxy) CertFingerprint() string { return p.certFP }

// pinnedTLS returns the client configuration for a neighbour port whose certificate has
// fingerprint fp: that certificate and no other, whoever signed it. The handshake fails
// before a byte of the request is sent otherwise. No server name goes out in clear.
// Sessions (nil: none) resume a neighbour's earlier session, by its address: no
// certificate is signed or checked again (the pin is checked on the resumed session's
// certificate), and the handshake costs about 15 % less (BenchmarkNeighbourHandshake).
func pinnedTLS(fp string, sessions tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		ClientSessionCache: sessions,
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{"http/1.1"},
		CurvePreferences:   neighbourCurves,
		// No chain, dates or names to verify against an authority: the pin is the check.
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection pins the certificate
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || swarm.CertFingerprint(cs.PeerCertificates[0].Raw) != fp {
				return errCertMismatch
			}
			return nil
		},
	}
}

// tlsSessions bounds the neighbour sessions a proxy keeps to resume (Proxy.tlsSessions);
// handshakeTimeout bounds a handshake with a neighbour. A pending handshake holds one of
// the neighbour's connection slots (neighbourConns), and the fetches queued behind it each
// fail at their stall bound, counted against the neighbour: the longer the bound, the more
// failures in a row (and reports) one slow handshake can make. 5 s was tried; with it,
// TestStatsAttack once saw an honest uploader banned under the full suite's load.
const (
	tlsSessions      = 256
	handshakeTimeout = 2 * time.Second
)

// dialPinned runs the TLS handshake on c, a connection to a neighbour port whose
// certificate has fingerprint fp, within ctx and handshakeTimeout; it closes c when the
// handshake fails.
func (p *Proxy) dialPinned(ctx context.Context, c net.Conn, fp string) (net.Conn, error) {
	tc := tls.Client(c, pinnedTLS(fp, p.tlsSessions))
	// The transport's dials outlive the requests that asked for them: bounded here.
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("neighbour TLS: %w", err)
	}
	return tc, nil
}
