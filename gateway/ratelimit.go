package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// Per-address rate limit of tracker calls. Each client address gets a token bucket of
// TrackerRate calls per second with a burst of twice that; beyond it a call gets 429 and
// the proxy simply uses the gateway until the next one. A proxy makes about three calls a
// segment, so the default leaves room for dozens of proxies behind one NAT address.

// maxLimitedAddrs bounds the buckets kept; past it they are all forgotten at once (each
// address starts again with a full burst: the bound protects memory, not the rate).
const maxLimitedAddrs = 65536

type addrLimiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

func newAddrLimiter(perSecond float64, now func() time.Time) *addrLimiter {
	return &addrLimiter{rate: rate.Limit(perSecond), burst: max(1, int(2*perSecond)), now: now,
		buckets: map[string]*rate.Limiter{}}
}

// allow takes one call from addr's bucket.
func (l *addrLimiter) allow(addr string) bool {
	l.mu.Lock()
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) >= maxLimitedAddrs {
			clear(l.buckets)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[addr] = b
	}
	l.mu.Unlock()
	return b.AllowN(l.now(), 1)
}

// middleware answers 429 to a client address over its rate.
func (l *addrLimiter) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !l.allow(c.RealIP()) {
			c.Response().Header().Set("Retry-After", strconv.Itoa(1))
			return echo.NewHTTPError(http.StatusTooManyRequests, "too many tracker calls from this address")
		}
		return next(c)
	}
}
