package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// secure is how a Server run by StartSecure is reached: TLS only, with a password.
type secure struct {
	password string
	certFile string // the server's certificate, which is also the CA clients trust
	keyFile  string
	roots    *x509.CertPool
}

// StartSecure starts a redis-server for t that accepts only TLS connections (its port is
// a tls-port; the plain port is off) and requires a password (requirepass). Its
// certificate is self-signed for 127.0.0.1, made for this test: trust CAFile.
func StartSecure(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: lookPath(t), dir: t.TempDir()}
	sec, err := newSecure(s.dir)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.secure = sec
	t.Cleanup(s.Stop)
	for range startAttempts {
		if s.port, err = freePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

// Password returns the password of a server run by StartSecure.
func (s *Server) Password() string { return s.secure.password }

// CAFile returns the PEM file clients of a server run by StartSecure must trust.
func (s *Server) CAFile() string { return s.secure.certFile }

// args returns the command-line options that make the server secure.
func (sec *secure) args(port int) []string {
	return []string{"--port", "0", "--tls-port", strconv.Itoa(port), "--tls-cert-file", sec.certFile,
		"--tls-key-file", sec.keyFile, "--tls-ca-cert-file", sec.certFile, "--tls-auth-clients", "no",
		"--requirepass", sec.password}
}

// url returns rediss://:PASSWORD@127.0.0.1:PORT/0.
func (sec *secure) url(port int) string {
	u := url.URL{Scheme: "rediss", User: url.UserPassword("", sec.password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/0"}
	return u.String()
}

// dial opens a TLS connection to addr trusting only the test's certificate.
func (sec *secure) dial(addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: probeTimeout}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: sec.roots, ServerName: "127.0.0.1"})
}

// newSecure makes a random password and a self-signed certificate for 127.0.0.1 in dir.
func newSecure(dir string) (*secure, error) {
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	sec := &secure{password: fmt.Sprintf("%x", pw), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	if err = os.WriteFile(sec.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err = os.WriteFile(sec.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	sec.roots = x509.NewCertPool()
	sec.roots.AddCert(cert)
	return sec, nil
}
