package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// Server is the gateway: it ingests every configured channel into its window and serves
// players, proxies (playlists with digests, tracker API) and stats over one HTTP handler.
type Server struct {
	cfg     Config
	reg     swarm.Registry
	reports reports // peers reported for bad bytes
	log     *slog.Logger
	origin  *http.Client
	// chans holds the channels by name; SetChannels replaces the map (never modified) and
	// wakes Run through reloaded to start and stop their ingest.
	chans    atomic.Pointer[map[string]*channel]
	reloaded chan struct{}
	echo     *echo.Echo
	id       string // this gateway's ID among a fleet's, for its own gauges
	// metrics serves GET /metrics; requests is rawflow_gateway_requests_total (metrics.go).
	metrics  http.Handler
	requests *prometheus.CounterVec
	events   overviewCache // what the dashboard's event streams send
	draining atomic.Bool   // set by Drain: readiness fails, serving goes on
	flushMu  sync.Mutex    // held by flushEgress
	streams  atomic.Int64  // SSE connections being served (handleEvents)
}

// New builds a gateway from cfg. reg is the swarm registry (memory or Redis).
func New(cfg Config, reg swarm.Registry) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reg: reg, log: cfg.Logger.With("component", "gateway"),
		origin: &http.Client{Timeout: cfg.OriginTimeout}, id: newPeerID()[:16], reloaded: make(chan struct{}, 1)}
	chans := map[string]*channel{}
	for _, cc := range cfg.Channels {
		chans[cc.Name] = newChannel(cc)
	}
	s.chans.Store(&chans)
	s.metrics = s.newMetrics()
	s.echo = s.routes()
	return s, nil
}

// Drain makes /readyz answer 503 from now on, so that load balancers stop sending new
// viewers here; everything else is served as before. It is the first step of a graceful
// shutdown (the caller then stops accepting and lets in-flight responses finish).
func (s *Server) Drain() { s.draining.Store(true) }

// newChannel makes a channel from its (validated) configuration.
func newChannel(cc ChannelConfig) *channel {
	latency, _ := ParseLatencyMode(string(cc.Latency)) // checked by Validate
	ch := &channel{name: cc.Name, latency: latency}
	ch.offload.Store(0.0)
	for _, src := range cc.Sources {
		u, _ := url.Parse(src) // checked by Validate
		ch.sources = append(ch.sources, u)
	}
	return ch
}

// channelMap returns the channels by name: a snapshot, never modified.
func (s *Server) channelMap() map[string]*channel { return *s.chans.Load() }

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
		ch := newChannel(cc)
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

// Handler returns the gateway's HTTP handler (players, proxies, API).
func (s *Server) Handler() http.Handler { return s.echo }

// Run discovers each channel's renditions, continues their saved timelines, then ingests
// them and flushes egress counters until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait() // after the cancels below
	wg.Go(func() { s.flushLoop(ctx) })
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

// fetch GETs u from an origin, bounded in size and time.
func (s *Server) fetch(ctx context.Context, u *url.URL, limit int64) ([]byte, error) {
	return getBounded(ctx, s.origin, s.cfg.OriginTimeout, u, limit)
}

// Segment returns the named segment of a channel's rendition ("" for a media origin), for
// tests and tools, or nil.
func (s *Server) Segment(channel, rendition, name string) *Segment {
	ch := s.channelMap()[channel]
	if ch == nil {
		return nil
	}
	r, err := ch.rendition(rendition)
	if err != nil {
		return nil
	}
	seg := r.win.segment(name)
	if seg != nil && seg.Data == nil { // VOD: the bytes, if held
		return r.win.vodStore().held(name)
	}
	return seg
}

func (s *Server) channel(name string) (*channel, error) {
	ch := s.channelMap()[name]
	if ch == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownChannel, name)
	}
	return ch, nil
}

// Cache-Control values by object type.
const (
	cacheSegment = "public, max-age=86400, immutable" // names embed the digest: never reused
	cacheError   = "public, max-age=1"
)

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect() // never trust X-Forwarded-For from viewers
	e.HTTPErrorHandler = s.errorHandler
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
	s.dashboardRoutes(e)
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.handleReady)
	s.trackerRoutes(e)
	return e
}

// handlePlaylist serves /live/{channel}/index.m3u8 (the multivariant playlist of a
// multivariant origin, else the media playlist) and /live/{channel}/{rendition}/index.m3u8.
func (s *Server) handlePlaylist(c echo.Context) error {
	ch, err := s.channel(c.Param("channel"))
	if err != nil {
		return err
	}
	name := c.Param("rendition")
	if name == "" {
		if mv := ch.multivariantPlaylist(); mv != nil {
			return s.writePlaylist(c, mv, "public, max-age=60")
		}
	}
	r, err := ch.rendition(name)
	if err != nil {
		return err
	}
	s.count(ch.name, "playlist")
	form := playlist.ForPlayers
	if c.Request().URL.RawQuery != "" && c.QueryParam("rawflow") == "peer" { // no query parse for players
		form = playlist.ForProxies
	} else {
		ch.direct.seen(c.RealIP(), s.cfg.Now()) // a player of the gateway itself
	}
	body, td := r.win.playlist(form)
	return s.writePlaylist(c, body, playlistCacheControl(td))
}

// playlistCacheControls holds the Cache-Control of a live playlist by target duration, so
// that no request builds the string.
var playlistCacheControls = func() (cc [61]string) {
	for td := range cc {
		cc[td] = "public, max-age=" + strconv.Itoa(max(1, td/2))
	}
	return cc
}()

// playlistCacheControl lets caches keep a live playlist for half a target duration.
func playlistCacheControl(td int) string {
	if td >= 0 && td < len(playlistCacheControls) {
		return playlistCacheControls[td]
	}
	return "public, max-age=" + strconv.Itoa(max(1, td/2))
}

// writePlaylist answers with a playlist, carrying the viewer's token into its URIs when
// URLs are signed.
func (s *Server) writePlaylist(c echo.Context, body []byte, cacheControl string) error {
	if len(s.cfg.SignKey) > 0 {
		body = withToken(body, c.QueryParam(swarm.TokenQuery))
	}
	c.Response().Header().Set("Cache-Control", cacheControl)
	return c.Blob(http.StatusOK, "application/vnd.apple.mpegurl", body)
}

func (s *Server) handleSegment(c echo.Context) error {
	ch, err := s.channel(c.Param("channel"))
	if err != nil {
		return err
	}
	r, err := ch.rendition(c.Param("rendition"))
	if err != nil {
		return err
	}
	seg := r.win.segment(c.Param("name"))
	if seg == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such segment")
	}
	s.count(ch.name, "segment")
	if seg.Data == nil { // VOD: fetched on demand
		if seg, err = s.onDemand(c.Request().Context(), r, seg); err != nil {
			return err
		}
	}
	h := c.Response().Header()
	// Shared, never modified header values: no allocation per request.
	h[echo.HeaderContentType] = contentType(seg.Name)
	h["Cache-Control"] = seg.cacheControl()
	h.Set("ETag", seg.ETag)
	// A deadline for this response only: the connection may serve more requests after it.
	rc := http.NewResponseController(c.Response())
	atRate := time.Duration(float64(len(seg.Data)) / float64(s.cfg.MinWriteRate) * float64(time.Second))
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout + atRate)) // the socket's clock, not cfg.Now
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	httpx.ServeBytes(c.Response(), c.Request(), seg.Data)
	if c.Request().Method == http.MethodGet && seg.kind != kindKey {
		ch.egress.Add(c.Response().Size)
		r.egress.Add(c.Response().Size)
	}
	return nil
}

// onDemand returns a VOD segment with its bytes, fetching them from the origin once
// however many requests ask at the same time.
func (s *Server) onDemand(ctx context.Context, r *rendition, placeholder *Segment) (*Segment, error) {
	store := r.win.vodStore()
	seg, err := store.get(ctx, placeholder, s.cfg.OriginTimeout, func(ctx context.Context) ([]byte, error) {
		return r.ingest.getRange(ctx, placeholder.src, placeholder.rng, s.cfg.MaxSegmentBytes)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errOriginFetch, err)
	}
	r.win.fetched(seg)
	return seg, nil
}

// Header values shared by every response that carries them; never modified.
var (
	ctTS     = []string{"video/mp2t"}
	ctMP4    = []string{"video/mp4"}
	ctAAC    = []string{"audio/aac"}
	ctVTT    = []string{"text/vtt"}
	ctOctets = []string{"application/octet-stream"}
)

// contentType returns the Content-Type header value of a segment, init section or key.
func contentType(name string) []string {
	switch path.Ext(name) {
	case ".ts":
		return ctTS
	case ".mp4", ".m4s":
		return ctMP4
	case ".aac":
		return ctAAC
	case ".vtt", ".webvtt":
		return ctVTT
	}
	return ctOctets
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
			n, td, at := r.win.status()
			limit := max(10*time.Second, 3*time.Duration(td)*time.Second)
			if n == 0 || (now.Sub(at) > limit && !r.win.ended()) {
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
// lived for caches.
func (s *Server) errorHandler(err error, c echo.Context) {
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, ErrUnknownChannel):
		he = echo.NewHTTPError(http.StatusNotFound, err.Error())
	case errors.Is(err, errOriginFetch):
		s.log.Warn("on-demand origin fetch failed", "path", c.Request().URL.Path, "err", err)
		he = echo.NewHTTPError(http.StatusBadGateway, "origin fetch failed")
	case errors.Is(err, errStarting):
		c.Response().Header().Set("Retry-After", "1")
		he = echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, swarm.ErrBadRequest):
		he = echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case errors.Is(err, swarm.ErrUnauthorized):
		he = echo.NewHTTPError(http.StatusUnauthorized, "peer token missing, invalid or expired: announce afresh")
	case errors.Is(err, swarm.ErrUnavailable):
		he = echo.NewHTTPError(http.StatusServiceUnavailable, "registry unavailable")
	case errors.Is(err, context.Canceled):
		return // the client went away: nothing to answer, nothing to log
	default:
		s.log.Error("request failed", "path", c.Request().URL.Path, "err", err)
		he = echo.NewHTTPError(http.StatusInternalServerError, "internal error")
	}
	c.Response().Header().Set("Cache-Control", cacheError)
	c.Echo().DefaultHTTPErrorHandler(he.SetInternal(err), c)
}
