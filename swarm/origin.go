package swarm

import (
	"net/url"
	"strings"
)

// Origin is a web origin, normalised: scheme, lower-case host, port (the scheme's default
// when the URL gives none). Hello.AllowOrigins carries origins in their text form.
type Origin struct{ Scheme, Host, Port string }

// MaxAllowOrigins bounds the origins one Hello may announce.
const MaxAllowOrigins = 32

// ParseOrigin reads a web origin, scheme://host[:port] (http or https, no path, query or
// user), as a browser sends it in an Origin header.
func ParseOrigin(s string) (Origin, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Origin{}, false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return Origin{Scheme: u.Scheme, Host: strings.ToLower(u.Hostname()), Port: port}, true
}
