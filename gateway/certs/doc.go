// Package certs gives the gateway's HTTPS listener its certificates, from one of two
// sources:
//
//	files.go     Files: a certificate chain and key read from PEM files, read again on Reload (SIGHUP)
//	acme.go      ACME: certificates obtained and renewed over ACME (golang.org/x/crypto/acme/autocert):
//	             TLS-ALPN-01 on the HTTPS listener, HTTP-01 on a plain port (HTTPHandler)
//	redirect.go  Redirect: the plain port's answer to everything but ACME challenges
//
// Each gives a *tls.Config whose NextProtos offer HTTP/2 first, then HTTP/1.1.
package certs
