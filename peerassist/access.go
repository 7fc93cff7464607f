package peerassist

// Who may see what through the player port. The player port listens on the viewer's own
// machine, where any web page the viewer opens can send it requests: it must serve no more
// than the viewer's player may see.
//
// Signed URLs (the gateway's --sign-key): the proxy cannot verify a token (the gateway holds
// the key), so every playlist request is passed to the gateway with its own token or none,
// and the gateway decides. A token the gateway accepted is remembered, per channel, until
// the expiry it carries; on a signed channel a segment is served only to a request that
// carries a remembered, unexpired token. A playlist served to a request carries that
// request's token, never another's.
//
// Origins: CORS and Private Network Access headers are sent only to the origins allowed
// (Config.AllowOrigins, the gateway's own origin, and those the gateway announces in
// Hello), so that other web pages cannot read what the player port serves.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Bounds of the tokens a member remembers.
const (
	maxTokens = 64
	// unknownExpiryFor is how long a token the gateway accepted is remembered when it
	// carries no expiry the proxy can read.
	unknownExpiryFor = time.Minute
)

// tokens are the signed-URL tokens the gateway accepted for one channel, and whether the
// channel's URLs are signed at all.
type tokens struct {
	mu       sync.Mutex // guards the following fields
	signed   bool
	accepted map[string]time.Time // token → its expiry
	latest   string               // the last token accepted: the proxy's own requests carry it
}

// tokenExpiry reads the expiry a gateway token carries (EXPIRY-SIGNATURE, EXPIRY in Unix
// seconds; see gateway/sign.go).
func tokenExpiry(token string, now time.Time) time.Time {
	exp, _, _ := strings.Cut(token, "-")
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || secs <= 0 {
		return now.Add(unknownExpiryFor)
	}
	return time.Unix(secs, 0)
}

// answered records the gateway's answer to a playlist request carrying token ("" for
// none): ok when it served the playlist, whose body was body; refused when it answered 403.
func (ts *tokens) answered(token string, ok, refused bool, body []byte, now time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch {
	case refused && token == "":
		ts.signed = true
	case ok && token == "":
		ts.signed = false
	case ok:
		// The gateway writes the token into a playlist's URIs only when URLs are signed.
		if bytes.Contains(body, []byte("?token="+url.QueryEscape(token))) {
			ts.signed = true
		}
		ts.accept(token, now)
	case refused:
		delete(ts.accepted, token)
	}
}

// accept remembers a token the gateway accepted (ts.mu held), dropping expired ones, and
// the one expiring first at the bound.
func (ts *tokens) accept(token string, now time.Time) {
	if ts.accepted == nil {
		ts.accepted = map[string]time.Time{}
	}
	if _, ok := ts.accepted[token]; !ok && len(ts.accepted) >= maxTokens {
		first := ""
		for t, exp := range ts.accepted {
			if !exp.After(now) {
				delete(ts.accepted, t)
			} else if first == "" || exp.Before(ts.accepted[first]) {
				first = t
			}
		}
		if len(ts.accepted) >= maxTokens {
			delete(ts.accepted, first)
		}
	}
	ts.accepted[token] = tokenExpiry(token, now)
	ts.latest = token
}

// allows reports whether a request carrying token may be served what the proxy holds of
// the channel: any request when URLs are not signed; else one whose token the gateway
// accepted and has not expired.
func (ts *tokens) allows(token string, now time.Time) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !ts.signed {
		return true
	}
	exp, ok := ts.accepted[token]
	return ok && token != "" && now.Before(exp)
}

// own returns the token the proxy's own requests (polls, prefetches) carry: the last one
// the gateway accepted, while it is valid.
func (ts *tokens) own(now time.Time) string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if exp, ok := ts.accepted[ts.latest]; ok && now.Before(exp) {
		return ts.latest
	}
	return ""
}

// origins are the web origins whose pages may read what the player port serves.
type origins struct {
	any      bool       // "*" was configured
	fixed    []origin   // configured, and the gateway's own
	loopback *origin    // the gateway's when it is on this machine: any loopback name with its scheme and port
	mu       sync.Mutex // guards announced
	// announced are the origins the gateway announced in its last Hello.
	announced []origin
}

// origin is a web origin, normalised.
type origin = swarm.Origin

// parseOrigin reads a web origin, scheme://host[:port], as a browser sends it in Origin.
func parseOrigin(s string) (origin, bool) { return swarm.ParseOrigin(s) }

// newOrigins returns the origins allowed: the configured ones ("*": any) and the gateway's
// own, gw. When the gateway is on this machine (a loopback or unspecified host), a page
// from any loopback name on its port is the gateway's too (the demo's dashboard at
// http://localhost:8080 plays a proxy's URL).
func newOrigins(configured []string, gw *url.URL) *origins {
	o := &origins{}
	for _, s := range configured {
		if s == "*" {
			o.any = true
		} else if or, ok := parseOrigin(s); ok {
			o.fixed = append(o.fixed, or)
		}
	}
	if g, ok := parseOrigin(gw.Scheme + "://" + gw.Host); ok {
		o.fixed = append(o.fixed, g)
		if ip := net.ParseIP(g.Host); loopbackHost(g.Host) || ip != nil && ip.IsUnspecified() {
			o.loopback = &g
		}
	}
	return o
}

// announce replaces the origins the gateway announced (invalid ones are ignored).
func (o *origins) announce(list []string) {
	var ann []origin
	for _, s := range list[:min(len(list), swarm.MaxAllowOrigins)] {
		if or, ok := parseOrigin(s); ok {
			ann = append(ann, or)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.announced = ann
}

// allowed reports whether a page of the web origin s (an Origin header) may read the
// player port's answers.
func (o *origins) allowed(s string) bool {
	if o.any {
		return true
	}
	or, ok := parseOrigin(s)
	if !ok {
		return false
	}
	if o.loopback != nil && or.Port == o.loopback.Port && or.Scheme == o.loopback.Scheme {
		if loopbackHost(or.Host) {
			return true
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, list := range [][]origin{o.fixed, o.announced} {
		for _, a := range list {
			if a == or {
				return true
			}
		}
	}
	return false
}

// validOrigin checks a configured origin: "*" or scheme://host[:port].
func validOrigin(s string) bool {
	_, ok := parseOrigin(s)
	return s == "*" || ok
}

// joined takes what the gateway announced in a Hello: its neighbour address policy (an
// unknown one is the strictest, public) and the origins it allows.
func (p *Proxy) joined(h swarm.Hello) {
	policy, err := swarm.ParseAddrPolicy(h.AddrPolicy)
	if err != nil {
		policy = swarm.AddrPublic
	}
	p.policy.Store(int32(policy))
	p.origins.announce(h.AllowOrigins)
	if p.link != nil {
		if err := p.link.SetICEServers(p.iceServers(h)); err != nil {
			p.log.Warn("the gateway announced an ICE server that does not parse; left out", "err", err)
		}
	}
}

// errPolicy: a plan named a neighbour the gateway's address policy does not allow.
var errPolicy = errors.New("neighbour address not allowed by the gateway's address policy")

// checkPolicy refuses, before any dial, a neighbour address the gateway's policy does not
// allow (loopback, link-local, private unless the deployment says so): honest proxies
// must not be aimed at the viewer's machine or LAN. Until a Hello says otherwise, the
// policy is public. Refusals are counted (Status.AddrRefused) and logged now and then.
func (p *Proxy) checkPolicy(addr string) error {
	policy := swarm.AddrPolicy(p.policy.Load())
	if policy.AllowsAddrPort(addr) {
		return nil
	}
	if p.addrRefused.Add(1)%100 == 1 {
		p.log.Warn("a plan named a neighbour the address policy does not allow; not dialled", "addr", addr, "policy", policy.String())
	}
	return fmt.Errorf("%w: %s (%s)", errPolicy, addr, policy)
}
