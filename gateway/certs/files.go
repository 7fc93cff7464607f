package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
)

// Files is a certificate chain and its key read from PEM files, served to every client.
type Files struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadFiles reads the key pair: certFile holds the certificate and any intermediates (leaf
// first), keyFile its private key.
func LoadFiles(certFile, keyFile string) (*Files, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("a certificate needs both its file and its key file")
	}
	f := &Files{certFile: certFile, keyFile: keyFile}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again; connections made from then on get the new pair. On an
// error the pair in use stays.
func (f *Files) Reload() error {
	c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("certificate %s, key %s: %w", f.certFile, f.keyFile, err)
	}
	f.cur.Store(&c)
	return nil
}

// Certificate returns the pair in use.
func (f *Files) Certificate() *tls.Certificate { return f.cur.Load() }

// TLSConfig returns the listener's configuration: the pair in use at each handshake,
// HTTP/2 and HTTP/1.1, TLS 1.2 at least.
func (f *Files) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return f.cur.Load(), nil },
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}
}
