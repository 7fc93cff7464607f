package certs

import (
	"net"
	"net/http"
	"strings"
)

// Redirect answers a plain HTTP request with a redirect to the same URL over HTTPS on
// httpsPort (the scheme's default, 443, is left out), and any method but GET and HEAD with
// 400.
func Redirect(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		host = strings.Trim(host, "[]")
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || host == "" {
			http.Error(w, "use HTTPS", http.StatusBadRequest)
			return
		}
		if httpsPort != "443" {
			host = net.JoinHostPort(host, httpsPort)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusFound)
	})
}
