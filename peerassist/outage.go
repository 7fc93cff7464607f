package peerassist

// Riding through a gateway outage (a restart, a network blip). While the gateway cannot be
// reached (connection refused, a timeout, a 5xx), a playlist request is answered with the
// last copy of that playlist the proxy served, for a bounded time (Config.OutageGrace,
// at least three target durations, after the gateway last served it); the segments it lists
// come from the cache as usual. A player re-polls a playlist that did not change, so it
// plays its buffer and then waits, rather than failing on a 502 and stopping. Meanwhile the
// gateway is tried again with a back-off: requests between tries get the copy at once.

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/swarm"
)

// Back-off of the gateway while it cannot be reached.
const (
	minGatewayBackoff = 250 * time.Millisecond
	maxGatewayBackoff = 2 * time.Second
	// outageWait bounds a playlist request's wait for the gateway when the proxy holds a
	// copy to fall back on: a gateway that answers nothing within it counts as down.
	outageWait = 2 * time.Second
)

// gatewayHealth is the gateway's reachability as the proxy's playlist requests saw it.
type gatewayHealth struct {
	mu      sync.Mutex // guards the following fields
	backoff time.Duration
	retryAt time.Time // while before it, the gateway is not asked again
}

// waiting reports whether the gateway is down and not to be asked again yet.
func (g *gatewayHealth) waiting(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Before(g.retryAt)
}

// failed records that the gateway could not be reached at now.
func (g *gatewayHealth) failed(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.backoff = min(max(2*g.backoff, minGatewayBackoff), maxGatewayBackoff)
	g.retryAt = now.Add(g.backoff)
}

// ok records that the gateway answered.
func (g *gatewayHealth) ok() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.backoff, g.retryAt = 0, time.Time{}
}

// unreachable reports whether err, from a gateway request, means that the gateway cannot
// be reached or cannot serve now (rather than an answer: 404, 403, a bad playlist).
func unreachable(err error) bool {
	var he *echo.HTTPError
	var se *httpx.StatusError
	switch {
	case err == nil, errors.As(err, &he), errors.Is(err, httpx.ErrTooLarge):
		return false // an answer: 403, 404, or a body too large
	case errors.As(err, &se):
		return se.Code >= 500 || se.Code == http.StatusTooManyRequests
	}
	return true // no answer: refused, reset, timed out
}

// copyOf is the last playlist of a rendition the proxy served, as it served it.
type copyOf struct {
	body  []byte // the players' form, carrying token in its URIs when URLs are signed
	token string
	at    time.Time // when the gateway served it
	td    time.Duration
	ended bool // an ended playlist does not change: its copy never goes stale
}

// keepCopy records the playlist of rendition served to a request carrying token.
func (m *member) keepCopy(rendition string, c copyOf) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.copies == nil {
		m.copies = map[string]copyOf{}
	}
	if _, ok := m.copies[rendition]; !ok && len(m.copies) >= maxRenditions {
		clear(m.copies)
	}
	m.copies[rendition] = c
}

// staleCopy returns the copy of rendition's playlist to serve to a request carrying token
// while the gateway cannot be reached: carrying that request's token, never another's; and
// false when there is none or it is too old (grace after the gateway served it, at least
// three target durations).
func (m *member) staleCopy(rendition, token string, grace time.Duration, now time.Time) ([]byte, bool) {
	m.mu.Lock()
	c, ok := m.copies[rendition]
	m.mu.Unlock()
	if !ok || (!c.ended && now.Sub(c.at) > max(grace, 3*c.td)) {
		return nil, false
	}
	if c.token == token || c.token == "" {
		return c.body, true
	}
	old := []byte("?" + swarm.TokenQuery + "=" + url.QueryEscape(c.token))
	return bytes.ReplaceAll(c.body, old, []byte("?"+swarm.TokenQuery+"="+url.QueryEscape(token))), true
}
