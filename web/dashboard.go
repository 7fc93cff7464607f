package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// Stats is what the dashboard reads: the channels, and each one's totals and stats buckets
// (see swarm.Bucket), which a fleet's registry keeps so that every gateway shows the same.
// For a channel not among Channels, Totals and Buckets return ErrUnknownChannel.
type Stats interface {
	// Channels returns the channels' names, sorted.
	Channels() []string
	// Totals returns a channel's counters since it began and its live proxies.
	Totals(ctx context.Context, channel string) (swarm.ChannelStats, error)
	// Buckets returns a channel's buckets from from to to, one per step (10 s, or a
	// multiple of a minute), as swarm.Memory and swarm.Redis do.
	Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]swarm.Bucket, error)
}

// ErrUnknownChannel is what Stats returns for a channel it does not have; the API answers
// 404.
var ErrUnknownChannel = errors.New("unknown channel")

// Config is the dashboard's configuration. The zero value of every field means its default.
type Config struct {
	// PricePerGB is what the broadcaster pays per GB delivered (decimal GB), for the money
	// the dashboard says peers saved. Zero or less means 0.02.
	PricePerGB float64
	// Currency is the currency of PricePerGB: a code of at most 8 characters, e.g. USD.
	// Empty means USD.
	Currency string
	// EventsInterval is how often the event stream sends the overview. Zero or less means
	// 2 s.
	EventsInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.PricePerGB <= 0 {
		c.PricePerGB = 0.02
	}
	if c.Currency == "" {
		c.Currency = "USD"
	}
	if c.EventsInterval <= 0 {
		c.EventsInterval = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first problem with the configuration, if any (zero values, which
// mean their defaults, are fine).
func (c Config) Validate() error {
	if len(c.Currency) > 8 {
		return fmt.Errorf("currency %q: want a short code such as USD", c.Currency)
	}
	return nil
}

// Dashboard serves the dashboard's pages and its stats API; see Register.
type Dashboard struct {
	stats   Stats
	cfg     Config
	pages   pages
	events  overviewCache // what the event streams send
	streams atomic.Int64  // event streams being served (handleEvents)
}

// New builds a dashboard that reads stats, with cfg (validated, defaults applied).
func New(stats Stats, cfg Config) (*Dashboard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Dashboard{stats: stats, cfg: cfg, pages: loadPages()}, nil
}

// Register adds the dashboard's routes to e:
//
//	GET /                                       the dashboard (static/index.html)
//	GET /preview/{channel}                      the preview page (static/preview.html)
//	GET /ui/{file}                              the assets under static/ (hls.js under vendor/)
//	GET /api/v1/overview                        the figures now (Overview)
//	GET /api/v1/channels/{channel}/series       a series over a range (Series)
//	GET /api/v1/channels/{channel}/breakdown    a breakdown over a range (Breakdown)
//	GET /api/v1/channels/{channel}/export.csv   a series as CSV
//	GET /api/v1/events                          the overview as Server-Sent Events
//
// The pages and assets also answer HEAD (other methods 405); only files embedded under
// static/ are served, and only for clean paths in canonical encoding (others 404). Ranges
// take from, to (unix seconds) and step (seconds). The handlers make their own errors (404
// for an unknown channel, 400 for a bad range, 503 past the event streams' cap)
// *echo.HTTPError values; other errors of Stats go to e's HTTPErrorHandler as they are.
// Register sets nothing else on e (no middleware, no error handler).
func (d *Dashboard) Register(e *echo.Echo) {
	d.pages.register(e)
	e.GET("/api/v1/overview", d.handleOverview)
	e.GET("/api/v1/channels/:channel/series", d.handleSeries)
	e.GET("/api/v1/channels/:channel/breakdown", d.handleBreakdown)
	e.GET("/api/v1/channels/:channel/export.csv", d.handleExport)
	e.GET("/api/v1/events", d.handleEvents)
}

// Handler returns an HTTP handler of the dashboard's routes alone (echo's defaults
// otherwise), for tests and for serving the dashboard on its own.
func (d *Dashboard) Handler() http.Handler {
	e := echo.New()
	d.Register(e)
	return e
}

// statusError maps web's own errors to their status; others are returned as they are.
func statusError(err error) error {
	if errors.Is(err, ErrUnknownChannel) {
		return echo.NewHTTPError(http.StatusNotFound, err.Error()).SetInternal(err)
	}
	return err
}

// noStoreJSON answers with a value or its error; figures change all the time: no caching.
func noStoreJSON(c echo.Context, v any, err error) error {
	if err != nil {
		return statusError(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, v)
}

// handleOverview answers with the figures now.
func (d *Dashboard) handleOverview(c echo.Context) error {
	ov, err := d.overview(c.Request().Context())
	return noStoreJSON(c, ov, err)
}

// handleSeries answers with a channel's series over the request's range.
func (d *Dashboard) handleSeries(c echo.Context) error {
	from, to, step, err := span(c, d.cfg.Now())
	if err != nil {
		return err
	}
	out, err := d.series(c.Request().Context(), c.Param("channel"), from, to, step)
	return noStoreJSON(c, out, err)
}

// handleBreakdown answers with a channel's breakdown over the request's range.
func (d *Dashboard) handleBreakdown(c echo.Context) error {
	from, to, _, err := span(c, d.cfg.Now())
	if err != nil {
		return err
	}
	out, err := d.breakdown(c.Request().Context(), c.Param("channel"), from, to)
	return noStoreJSON(c, out, err)
}

// handleExport writes a channel's series as CSV.
func (d *Dashboard) handleExport(c echo.Context) error {
	from, to, step, err := span(c, d.cfg.Now())
	if err != nil {
		return err
	}
	series, err := d.series(c.Request().Context(), c.Param("channel"), from, to, step)
	if err != nil {
		return statusError(err)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="rawflow-%s-%d-%d.csv"`, series.Channel, series.From, series.To))
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	_ = w.Write([]string{"time", "gateway_bytes", "peer_bytes", "uploaded_bytes", "offload", "viewers_assisted", "viewers_direct",
		"stalls", "startups", "startup_ms", "integrity_failures", "peers_banned", "tracker_refused"})
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, p := range series.Points {
		_ = w.Write([]string{time.Unix(p.T, 0).UTC().Format(time.RFC3339), i(p.GatewayBytes), i(p.PeerBytes), i(p.UploadedBytes),
			strconv.FormatFloat(p.Offload, 'f', 4, 64), i(p.ViewersAssisted), i(p.ViewersDirect), i(p.Stalls), i(p.Startups),
			i(p.StartupMillis), i(p.IntegrityFailures), i(p.PeersBanned), i(p.TrackerRefused)})
	}
	w.Flush()
	return w.Error()
}
