// Package certs gives the gateway's HTTPS listener its certificates:
//
//	files.go     Files: a certificate chain and key read from PEM files, read again on Reload (SIGHUP)
//	redirect.go  Redirect: the plain port's answer to every request
//
// It gives a *tls.Config whose NextProtos offer HTTP/2 first, then HTTP/1.1.
package certs
