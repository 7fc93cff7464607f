package httpx

import (
	"crypto/x509"
	"fmt"
	"os"
)

// Roots returns the system's certificate authorities plus those in the PEM file caFile
// (the system's alone when caFile is empty): the roots a client trusts for a server that
// may have a certificate from a public CA or from a private one. A file with no PEM
// certificate is an error.
func Roots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool() // no system roots here: the file's alone
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate", caFile)
	}
	return pool, nil
}
