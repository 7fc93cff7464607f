package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// openPaths are the routes AdminToken never guards: players, proxies (tracker) and
// health checks. Every other route of the router the gateway registers on — /metrics, the
// stats API, the dashboard's pages, assets and API — needs the token when one is set.
var openPaths = []string{"/live/", "/api/v1/swarm/", "/healthz", "/readyz"}

// requireAdmin answers 401 to a request for a guarded route that carries neither
// "Authorization: Bearer TOKEN" (Prometheus) nor HTTP Basic auth with TOKEN as the
// password, any user name (browsers: the dashboard and its event stream work unchanged).
// The comparison takes the same time whatever the guess.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return func(c echo.Context) error {
		p := c.Request().URL.Path
		for _, open := range openPaths {
			if strings.HasPrefix(p, open) {
				return next(c)
			}
		}
		got := strings.TrimPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
		if _, pass, ok := c.Request().BasicAuth(); ok {
			got = pass
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			return next(c)
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="rawflow", charset="UTF-8"`)
		return echo.NewHTTPError(http.StatusUnauthorized, "admin token required (--admin-token): Authorization: Bearer TOKEN, or Basic auth with TOKEN as the password")
	}
}
