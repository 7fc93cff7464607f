package peerassist

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// errGatewayStatus: the gateway answered with a non-2xx status.
var errGatewayStatus = errors.New("gateway status")

// PlayerHandler serves the player port: the gateway's paths (/live/{channel}/…), so a
// player switches to the proxy by changing only host:port, and GET /api/v1/status.
// /live answers CORS to the allowed origins only (access.go), so that their web players,
// the gateway dashboard's preview page among them, can play through the proxy; their
// preflights to this private address get the Private Network Access header Chrome asks
// for. Other pages get neither.
func (p *Proxy) PlayerHandler() http.Handler {
	e := newEcho()
	live := e.Group("/live", p.privateNetwork, httpx.LiveCORSFor(p.origins.allowed))
	for _, prefix := range []string{"/:channel", "/:channel/:rendition"} {
		live.GET(prefix+"/index.m3u8", p.handlePlaylist)
		live.GET(prefix+"/:name", p.handleSegment)
		live.HEAD(prefix+"/:name", p.handleSegment)
		live.OPTIONS(prefix+"/:name", echo.MethodNotAllowedHandler) // answered by LiveCORS
	}
	e.GET("/api/v1/status", func(c echo.Context) error { return c.JSON(http.StatusOK, p.Status()) })
	e.GET("/metrics", echo.WrapHandler(p.metrics))
	return e
}

// privateNetwork answers the Access-Control-Request-Private-Network of an allowed origin's
// preflight.
func (p *Proxy) privateNetwork(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Header.Get("Access-Control-Request-Private-Network") == "true" && p.origins.allowed(r.Header.Get("Origin")) {
			c.Response().Header().Set("Access-Control-Allow-Private-Network", "true")
		}
		return next(c)
	}
}

// NeighbourHandler serves the neighbour port: verified segments by digest, nothing else.
func (p *Proxy) NeighbourHandler() http.Handler {
	e := newEcho()
	e.GET(swarm.NeighbourSegmentPath+":digest", p.handleNeighbour)
	return e
}

func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect() // a player is its connection's address (qoe.go)
	e.HTTPErrorHandler = errorHandler
	return e
}

// errorHandler maps errors to statuses in one place: gateway trouble is 502 (504 on
// timeout), a player that went away gets nothing.
func errorHandler(err error, c echo.Context) {
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, errGatewayStatus):
		he = echo.NewHTTPError(http.StatusBadGateway, err.Error())
	case c.Request().Context().Err() != nil:
		return
	case isTimeout(err):
		he = echo.NewHTTPError(http.StatusGatewayTimeout, err.Error())
	default:
		he = echo.NewHTTPError(http.StatusBadGateway, err.Error())
	}
	if c.Response().Committed {
		return
	}
	msg, ok := he.Message.(string)
	if !ok {
		msg = http.StatusText(he.Code)
	}
	// The message only: never the wrapped internals (echo's default writes "code=…,
	// internal=…" for some errors).
	_ = c.JSON(he.Code, map[string]string{"message": msg})
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout())
}

// handlePlaylist fetches the proxies' form of the playlist from the gateway (always fresh:
// playlists come only from the gateway), learns the digests, and serves the players' form.
func (p *Proxy) handlePlaylist(c echo.Context) error {
	m, err := p.channelMember(c)
	if err != nil {
		return err
	}
	now := p.cfg.Now()
	m.players.playlist(c.RealIP(), now)
	rendition, token := c.Param("rendition"), c.QueryParam(swarm.TokenQuery)
	// The copy to fall back on while the gateway is down: only for a request that may see
	// it (access.go).
	stale, haveStale := m.staleCopy(rendition, token, p.cfg.OutageGrace, now)
	haveStale = haveStale && m.tokens.allows(token, now)
	if haveStale && p.gwHealth.waiting(now) {
		return p.serveStale(c, stale)
	}
	wait := p.cfg.GatewayTimeout
	if haveStale {
		wait = min(wait, outageWait)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), wait)
	defer cancel()
	body, err := p.gatewayGet(ctx, m.playlistPath(rendition, token), playlist.MaxPlaylistBytes)
	var he *echo.HTTPError
	m.tokens.answered(token, err == nil, errors.As(err, &he) && he.Code == http.StatusForbidden, body, p.cfg.Now())
	switch {
	case err != nil && c.Request().Context().Err() != nil:
		return err
	case err != nil && unreachable(err):
		p.gwHealth.failed(p.cfg.Now())
		if haveStale {
			return p.serveStale(c, stale)
		}
		return err
	case err != nil:
		p.gwHealth.ok()
		return err
	}
	p.gwHealth.ok()
	w, err := playlist.ParseGateway(body)
	switch {
	case errors.Is(err, playlist.ErrNotMedia) && rendition == "":
		// The channel's multivariant playlist: its URIs are relative, so the player asks
		// this proxy for the renditions.
		m.keepCopy(rendition, copyOf{body: body, token: token, at: now, ended: true})
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.Blob(http.StatusOK, "application/vnd.apple.mpegurl", body)
	case err != nil:
		return echo.NewHTTPError(http.StatusBadGateway, "gateway playlist: "+err.Error())
	}
	m.learn(rendition, w, now, true)
	out := playlist.Render(forPlayer(*w), playlist.ForPlayers)
	m.keepCopy(rendition, copyOf{body: out, token: token, at: now, td: time.Duration(w.TargetDuration) * time.Second, ended: w.Ended})
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/vnd.apple.mpegurl", out)
}

// serveStale answers a playlist request with the proxy's copy while the gateway is down.
func (p *Proxy) serveStale(c echo.Context, body []byte) error {
	p.stalePlaylists.Add(1)
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/vnd.apple.mpegurl", body)
}

// minListed is the fewest segments holdBack leaves in a live playlist, and the segments
// players stay behind the end of the playlist they get: HOLD-BACK is three target
// durations at least.
const minListed = 3

// defaultHidden is how many segments are hidden when the gateway's playlist does not say
// (no HOLD-BACK): the gateway's normal latency mode.
const defaultHidden = 1

// forPlayer is the players' view of a live playlist: the gateway's HOLD-BACK of (3 + H)
// target durations (its latency mode) becomes H hidden newest segments and a HOLD-BACK of
// three target durations, so that the swarm has H segments' time to spread a segment
// before any player can ask for it, and assisted players play as far behind live as the
// gateway's direct players. An ended playlist is left whole.
func forPlayer(w playlist.Window) playlist.Window {
	if w.Ended {
		return w
	}
	td := time.Duration(w.TargetDuration) * time.Second
	hidden := defaultHidden
	if hold, ok := playlist.HoldBack(w.Header); ok && td > 0 {
		hidden = max(0, int((hold+td/2)/td)-minListed)
	}
	w = holdBack(w, hidden)
	if _, ok := playlist.HoldBack(w.Header); ok {
		w.Header = playlist.WithHoldBack(w.Header, minListed*td)
	}
	return w
}

// holdBack leaves the newest n segments out of a live playlist, keeping at least
// minListed. Every proxy applies the same n, so players stay aligned across the swarm.
func holdBack(w playlist.Window, n int) playlist.Window {
	if w.Ended || n <= 0 {
		return w
	}
	keep := max(len(w.Segments)-n, min(len(w.Segments), minListed))
	w.Segments = w.Segments[:keep]
	return w
}

// handleSegment serves a segment or init section listed in a playlist this proxy served,
// through the fetch ladder. Anything else (a key, or a segment of a player that started
// elsewhere) is passed through from the gateway, which is trusted, and is neither cached
// nor shared with neighbours. Then it counts what the delivery was for the player: its
// startup or a stall (qoe.go).
func (p *Proxy) handleSegment(c echo.Context) error {
	m, err := p.channelMember(c)
	if err != nil {
		return err
	}
	addr := c.RealIP()
	m.players.touch(addr, p.cfg.Now())
	obj, err := p.segmentObject(c, m)
	if err != nil {
		return err
	}
	c.Response().Header()[echo.HeaderContentType] = httpx.ContentType(c.Param("name"))
	httpx.ServeBytes(c.Response(), c.Request(), obj.data)
	if obj.media && wholeWritten(c, len(obj.data)) {
		if d, first := m.played(addr, obj.need, p.cfg.Now()); first {
			p.observeStartup(d)
		}
	}
	return nil
}

// object is what a segment request is answered with.
type object struct {
	data  []byte
	media bool      // a media segment: not an init section, nor a key
	need  time.Time // when the player's buffer runs dry without it; zero when unknown
}

// segmentObject gets the object c asks for: a listed one through the fetch ladder, anything
// else passed through from the gateway.
func (p *Proxy) segmentObject(c echo.Context, m *member) (object, error) {
	ctx, name, rendition := c.Request().Context(), c.Param("name"), c.Param("rendition")
	h := c.Response().Header()
	if info, ok := m.lookup(rendition, name, p.cfg.Now()); ok {
		if !m.tokens.allows(c.QueryParam(swarm.TokenQuery), p.cfg.Now()) {
			// A signed channel: only a request whose token the gateway accepted sees what
			// the proxy holds (access.go). Objects passed through, the gateway judges.
			p.tokenRefused.Add(1)
			return object{}, echo.NewHTTPError(http.StatusForbidden, "token missing, invalid or expired")
		}
		at, dry := p.needBy(c.Request(), m, info)
		seg, err := p.fetch(ctx, m, info, at)
		if err != nil {
			return object{}, err
		}
		if info.dur > 0 {
			m.head(rendition).served(info.seq, info.dur, p.cfg.Now())
		}
		h.Set("Cache-Control", "public, max-age=86400, immutable")
		obj := object{data: seg.data, media: info.dur > 0}
		if dry {
			obj.need = at
		}
		return obj, nil
	}
	if !objectNameRe.MatchString(name) {
		return object{}, echo.NewHTTPError(http.StatusNotFound, "unknown object")
	}
	data, err := p.gatewayGet(ctx, passThroughPath(m.channel, rendition, name, c.QueryString()), p.cfg.MaxSegmentBytes)
	if err != nil {
		return object{}, err
	}
	h.Set("Cache-Control", "private, no-store")
	key := path.Ext(name) == ".key" // keys are not media: they do not count as delivery
	if !key {
		m.stats.got(delivery{rendition: rendition, gateway: int64(len(data))})
	}
	return object{data: data, media: !key}, nil
}

// needBy returns when the player asking r needs the segment: now plus the buffer it
// reports in CMCD, else what its playhead gives, else now (a start: urgent). dry says
// whether that is when the player's buffer runs dry (CMCD, or the playhead for a segment
// after the last one served) rather than "now" for want of knowing better: only such a
// deadline can be missed (a stall, qoe.go).
func (p *Proxy) needBy(r *http.Request, m *member, info segInfo) (at time.Time, dry bool) {
	now := p.cfg.Now()
	ph := m.head(info.rendition)
	if bl, ok := cmcdBuffer(r); ok {
		ph.observeBuffer(now, bl)
		return now.Add(bl), true
	}
	if info.dur == 0 { // an init section: needed before any media
		return now, false
	}
	if at, known, dry := ph.need(info.seq, now, true); known {
		return at, dry
	}
	return now, false
}

// objectNameRe is what the name of an object the proxy passes through may look like: the
// gateway names objects with these characters only, so anything else is not one of them.
var objectNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

// passThroughPath is the gateway path of an object the proxy does not know.
func passThroughPath(channel, rendition, name, query string) string {
	p := "/live/" + channel + "/"
	if rendition != "" {
		p += rendition + "/"
	}
	p += name
	if query != "" {
		p += "?" + query
	}
	return p
}

func (p *Proxy) channelMember(c echo.Context) (*member, error) {
	name := c.Param("channel")
	if !swarm.ValidChannel(name) || !swarm.ValidRendition(c.Param("rendition")) {
		return nil, echo.NewHTTPError(http.StatusNotFound, "unknown channel")
	}
	m := p.member(name)
	if m == nil {
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, ErrTooManyChannels.Error())
	}
	p.activate(m)
	return m, nil
}

// readBody reads a gateway response up to limit bytes and closes it. A 404 or a 403 (a
// signed URL's token refused) is told to the player as it is; other statuses are
// errGatewayStatus.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	data, err := httpx.ReadBody(resp, limit)
	var se *httpx.StatusError
	switch {
	case err == nil:
		return data, nil
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		return nil, echo.NewHTTPError(http.StatusNotFound, "not found at the gateway")
	case errors.As(err, &se) && se.Code == http.StatusForbidden:
		return nil, echo.NewHTTPError(http.StatusForbidden, "refused by the gateway")
	case errors.As(err, &se), errors.Is(err, httpx.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", errGatewayStatus, err)
	}
	return nil, fmt.Errorf("gateway: %w", err)
}
