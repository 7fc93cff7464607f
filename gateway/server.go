package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/gateway/tracker"
	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/swarm"
)

// Server is the gateway: it ingests every configured channel into its window and serves
// players, proxies (playlists with digests, tracker API) and stats over one HTTP handler.
type Server struct {
	cfg     Config
	reg     Registry
	tracker *tracker.Tracker
	log     *slog.Logger
	// chans holds the channels by name; SetChannels replaces the map (never modified) and
	// wakes Run through reloaded to start and stop their ingest.
	chans    atomic.Pointer[map[string]*channel]
	reloaded chan struct{}
	echo     *echo.Echo
	id       string // this gateway's ID among a fleet's, for its own gauges
	// metrics serves GET /metrics; requests is rawflow_gateway_requests_total (metrics.go).
	metrics  http.Handler
	requests *prometheus.CounterVec
	fetches  *prometheus.CounterVec // segment requests by RawFlow-Fetch
	draining atomic.Bool            // set by Drain: readiness fails, serving goes on
	flushMu  sync.Mutex             // held by flushEgress
	held     *holdBack              // members' copies held back while the uplink is saturated (held.go)
	pacer    *pacer                 // segment bytes paced to EgressLimit or the estimate, roots first (pace.go)
	uplink   *uplinkEstimator       // the uplink's rate, without EgressLimit (uplink.go); nil with it
}

// New builds a gateway from cfg. reg is the registry it shares with its fleet
// (swarm.Memory when alone, swarm.Redis for a fleet).
func New(cfg Config, reg Registry) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reg: reg, log: cfg.Logger.With("component", "gateway"),
		id: newGatewayID(), reloaded: make(chan struct{}, 1), held: newHoldBack(cfg.BusyTransfers, cfg.EgressLimit), pacer: newPacer(cfg.EgressLimit, time.Now)}
	if cfg.EgressLimit <= 0 { // not told the uplink: estimated
		s.uplink = newUplinkEstimator(s.pacer, s.held, s.log)
	}
	s.tracker = tracker.New(tracker.Config{Served: func(ch string) bool { return s.channelMap()[ch] != nil },
		Called:  func(ch string) { s.count(ch, "tracker") },
		PeerKey: cfg.PeerKey, Seeders: cfg.Seeders, ReportInterval: cfg.ReportInterval, JoinRate: cfg.JoinRate, PeerRate: cfg.PeerRate, PeersPerAddress: cfg.PeersPerAddress,
		AddressRate: cfg.TrackerRate, PeerAddrs: cfg.PeerAddrs, AllowOrigins: cfg.PlayerOrigins, Logger: cfg.Logger, Now: cfg.Now,
		STUNPort: cfg.STUNPort, STUNAltPort: cfg.STUNAltPort, ICEServers: cfg.ICEServers, TURNSecret: cfg.TURNSecret}, reg)
	chans := map[string]*channel{}
	for _, cc := range cfg.Channels {
		chans[cc.Name] = newChannel(cc, &cfg)
	}
	s.chans.Store(&chans)
	s.metrics = s.newMetrics()
	s.echo = echo.New()
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.Register(s.echo)
	return s, nil
}

// Drain makes /readyz answer 503 from now on, so that load balancers stop sending new
// viewers here; everything else is served as before. It is the first step of a graceful
// shutdown (the caller then stops accepting and lets in-flight responses finish).
func (s *Server) Drain() { s.draining.Store(true) }

// newChannel makes a channel from its (validated) configuration, with an origin client
// of its own: its policy allows the class of the channel's own origin addresses.
func newChannel(cc ChannelConfig, cfg *Config) *channel {
	latency, _ := ParseLatencyMode(string(cc.Latency)) // checked by Validate
	ch := &channel{name: cc.Name, latency: latency}
	ch.offload.Store(0.0)
	for _, src := range cc.Sources {
		u, _ := url.Parse(src) // checked by Validate
		ch.sources = append(ch.sources, u)
	}
	ch.origin = ingest.NewOrigin(ingest.OriginConfig{Timeout: cfg.OriginTimeout, Addrs: cfg.OriginAddrs, Sources: ch.sources})
	return ch
}

// channelMap returns the channels by name: a snapshot, never modified.
func (s *Server) channelMap() map[string]*channel { return *s.chans.Load() }

// Channels returns the names of the gateway's channels, sorted.
func (s *Server) Channels() []string {
	names := make([]string, 0, len(s.channelMap()))
	for name := range s.channelMap() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SetChannels replaces the gateway's channels with cfgs, validated as New does: a channel
// whose sources and latency mode are unchanged goes on as it is (window, viewers, stats);
// a new or changed one starts afresh (its timeline continues from the registry); a removed
// one stops, and its URLs answer 404. It reports the names of each kind.
func (s *Server) SetChannels(cfgs []ChannelConfig) (added, changed, removed []string, err error) {
	c := s.cfg
	c.Channels = cfgs
	if err := c.Validate(); err != nil {
		return nil, nil, nil, err
	}
	old := s.channelMap()
	next := make(map[string]*channel, len(cfgs))
	for _, cc := range cfgs {
		ch := newChannel(cc, &s.cfg)
		switch prev := old[cc.Name]; {
		case prev == nil:
			added = append(added, cc.Name)
		case prev.latency == ch.latency && slices.EqualFunc(prev.sources, ch.sources, func(a, b *url.URL) bool { return a.String() == b.String() }):
			ch = prev
		default:
			changed = append(changed, cc.Name)
		}
		next[cc.Name] = ch
	}
	for name := range old {
		if next[name] == nil {
			removed = append(removed, name)
		}
	}
	s.chans.Store(&next)
	select {
	case s.reloaded <- struct{}{}:
	default: // Run has a wake-up pending already
	}
	return added, changed, removed, nil
}

// Handler returns the gateway's HTTP handler (players, proxies, API): an echo of its own
// with the routes of Register.
func (s *Server) Handler() http.Handler { return s.echo }

// Run discovers each channel's renditions, continues their saved timelines, then ingests
// them and flushes egress counters until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait() // after the cancels below
	wg.Go(func() { s.flushLoop(ctx) })
	wg.Go(func() { _ = s.tracker.Run(ctx) })
	if s.uplink != nil {
		wg.Go(func() { s.uplink.run(ctx) })
	}
	running := map[*channel]context.CancelFunc{}
	defer func() {
		for _, stop := range running {
			stop()
		}
	}()
	for {
		current := s.channelMap()
		for ch, stop := range running {
			if current[ch.name] != ch { // removed or replaced by SetChannels
				stop()
				delete(running, ch)
			}
		}
		for _, ch := range current {
			if running[ch] == nil {
				cctx, stop := context.WithCancel(ctx)
				running[ch] = stop
				wg.Go(func() { s.runChannel(cctx, ch) })
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.reloaded:
		}
	}
}

func (s *Server) channel(name string) (*channel, error) {
	ch := s.channelMap()[name]
	if ch == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownChannel, name)
	}
	return ch, nil
}

// Register adds the gateway's routes to e, which may serve others too (cmd adds the
// dashboard's), and sets e's IPExtractor (the peer's address: X-Forwarded-For is never
// trusted) and HTTPErrorHandler (errorHandler, which answers other routes'
// *echo.HTTPError as they are). The only middleware it adds to e itself is the admin
// token check (requireAdmin), when AdminToken is set; the /live routes have theirs.
func (s *Server) Register(e *echo.Echo) {
	e.IPExtractor = echo.ExtractIPDirect() // never trust X-Forwarded-For from viewers
	e.HTTPErrorHandler = s.errorHandler
	if s.cfg.AdminToken != "" {
		e.Pre(s.requireAdmin) // before routing: guards every route but the open ones, whoever adds it
	}
	mw := []echo.MiddlewareFunc{httpx.LiveCORS(), middleware.GzipWithConfig(middleware.GzipConfig{
		Skipper: func(c echo.Context) bool { return path.Ext(c.Request().URL.Path) != ".m3u8" },
	})}
	if len(s.cfg.SignKey) > 0 {
		mw = append(mw, s.requireToken)
	}
	live := e.Group("/live", mw...) // group middleware applies to routes added after it
	for _, prefix := range []string{"/:channel", "/:channel/:rendition"} {
		live.GET(prefix+"/index.m3u8", s.handlePlaylist)
		live.HEAD(prefix+"/index.m3u8", s.handlePlaylist)
		live.GET(prefix+"/:name", s.handleSegment)
		live.HEAD(prefix+"/:name", s.handleSegment)
		live.OPTIONS(prefix+"/:name", echo.MethodNotAllowedHandler) // answered by LiveCORS
	}
	e.GET(swarm.PathStats, s.handleStats)
	e.GET("/metrics", echo.WrapHandler(s.metrics))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.handleReady)
	s.tracker.Register(e)
}

// echoText is how an *echo.HTTPError prints itself ("code=400, message=EOF,
// internal=EOF"), which says nothing to a client.
var echoText = regexp.MustCompile(`code=\d+, message=[^\n]*?(, internal=[^\n]*)?$`)

// clientText is err's message for a client: one line, with echo's own error texts (a
// binder's, say) replaced by what was wrong.
func clientText(err error) string {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		parts = append(parts, echoText.ReplaceAllString(line, "malformed or empty request body"))
	}
	return strings.Join(parts, ": ")
}

// newGatewayID returns a random ID for this gateway among a fleet's: 16 hex characters.
func newGatewayID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// handleReady is 200 when every rendition of every channel listed a segment within the
// last three target durations (at least 10 s) or has ended, else 503 naming the stale ones.
func (s *Server) handleReady(c echo.Context) error {
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"ready": false, "draining": true})
	}
	now := s.cfg.Now()
	var stale []string
	for name, ch := range s.channelMap() {
		rs := ch.list()
		if len(rs) == 0 {
			stale = append(stale, name)
		}
		for _, r := range rs {
			n, td, at, ended := r.win.status()
			limit := max(10*time.Second, 3*time.Duration(td)*time.Second)
			if n == 0 || (now.Sub(at) > limit && !ended) {
				stale = append(stale, name+"/"+r.name)
			}
		}
	}
	if len(stale) > 0 {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"ready": false, "stale": stale})
	}
	return c.JSON(http.StatusOK, map[string]any{"ready": true})
}

// errorHandler maps errors to statuses in one place and makes every error response short
// lived for caches. An *echo.HTTPError (a handler's own, package web's, or echo's 404 and
// 405) is answered as it is, never modified: echo's are shared values (one whose message
// is not text says its status's name). Other texts go through clientText: one line, no
// echo internals ("code=400, message=EOF, internal=EOF"); an *echo.HTTPError wrapped in
// another error gives its code.
func (s *Server) errorHandler(err error, c echo.Context) {
	status := func(code int, message string) *echo.HTTPError {
		return echo.NewHTTPError(code, message).SetInternal(err)
	}
	he, direct := err.(*echo.HTTPError) //nolint:errorlint // only an unwrapped one is answered as it is; wrapped ones below
	switch {
	case direct:
		if _, text := he.Message.(string); !text {
			he = status(he.Code, strings.ToLower(http.StatusText(he.Code)))
		}
	case errors.Is(err, ErrUnknownChannel):
		he = status(http.StatusNotFound, clientText(err))
	case errors.Is(err, errOriginFetch):
		s.log.Warn("on-demand origin fetch failed", "path", c.Request().URL.Path, "err", err)
		he = status(http.StatusBadGateway, "origin fetch failed")
	case errors.Is(err, errStarting):
		c.Response().Header().Set("Retry-After", "1")
		he = status(http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, swarm.ErrBadRequest):
		he = status(http.StatusBadRequest, clientText(err))
	case errors.Is(err, swarm.ErrUnauthorized):
		he = status(http.StatusUnauthorized, "peer token missing, invalid or expired: announce afresh")
	case errors.Is(err, swarm.ErrUnavailable):
		he = status(http.StatusServiceUnavailable, "registry unavailable")
	case errors.Is(err, context.Canceled):
		return // the client went away: nothing to answer, nothing to log
	case errors.As(err, &he): // echo's, wrapped: its code, in plain words
		he = status(he.Code, strings.ToLower(http.StatusText(he.Code))+": "+clientText(err))
	default:
		s.log.Error("request failed", "path", c.Request().URL.Path, "err", err)
		he = status(http.StatusInternalServerError, "internal error")
	}
	c.Response().Header().Set("Cache-Control", cacheError)
	c.Echo().DefaultHTTPErrorHandler(he, c)
}
