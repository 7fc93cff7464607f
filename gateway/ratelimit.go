package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// Per-address rate limit of tracker calls, on echo's rate limiter middleware. Each client
// address gets a token bucket of TrackerRate calls per second with a burst of twice that;
// beyond it a call gets 429 and the proxy simply uses the gateway until the next one.

// maxLimitedAddrs bounds the buckets kept; past it they are all forgotten at once (each
// address starts again with a full burst: the bound protects memory, not the rate).
// echo's own RateLimiterMemoryStore has no such bound, and addresses cost an attacker
// little (an IPv6 /64 holds 2^64 of them).
const maxLimitedAddrs = 65536

// boundedStore is a middleware.RateLimiterStore of at most maxLimitedAddrs buckets.
type boundedStore struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

func newBoundedStore(perSecond float64, now func() time.Time) *boundedStore {
	return &boundedStore{rate: rate.Limit(perSecond), burst: max(1, int(2*perSecond)), now: now,
		buckets: map[string]*rate.Limiter{}}
}

// Allow takes one call from id's bucket.
func (l *boundedStore) Allow(id string) (bool, error) {
	l.mu.Lock()
	b := l.buckets[id]
	if b == nil {
		if len(l.buckets) >= maxLimitedAddrs {
			clear(l.buckets)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[id] = b
	}
	l.mu.Unlock()
	return b.AllowN(l.now(), 1), nil
}

// trackerLimit answers 429 to a client address over TrackerRate.
func (s *Server) trackerLimit() echo.MiddlewareFunc {
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store:               newBoundedStore(s.cfg.TrackerRate, s.cfg.Now),
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", strconv.Itoa(1))
			return echo.NewHTTPError(http.StatusTooManyRequests, "too many tracker calls from this address")
		},
	})
}
