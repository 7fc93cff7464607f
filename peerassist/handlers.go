package peerassist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// errGatewayStatus: the gateway answered with a non-2xx status.
var errGatewayStatus = errors.New("gateway status")

// PlayerHandler serves the player port: the gateway's paths (/live/{channel}/…), so a
// player switches to the proxy by changing only host:port, and GET /api/v1/status.
func (p *Proxy) PlayerHandler() http.Handler {
	e := newEcho()
	for _, prefix := range []string{"/live/:channel", "/live/:channel/:rendition"} {
		e.GET(prefix+"/index.m3u8", p.handlePlaylist)
		e.GET(prefix+"/:name", p.handleSegment)
		e.HEAD(prefix+"/:name", p.handleSegment)
	}
	e.GET("/api/v1/status", func(c echo.Context) error { return c.JSON(http.StatusOK, p.Status()) })
	return e
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
	c.Echo().DefaultHTTPErrorHandler(he.SetInternal(err), c)
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
	rendition := c.Param("rendition")
	ctx, cancel := context.WithTimeout(c.Request().Context(), p.cfg.GatewayTimeout)
	defer cancel()
	body, err := p.gatewayGet(ctx, m.playlistPath(rendition, c.QueryParam(swarm.TokenQuery)), playlist.MaxPlaylistBytes)
	if err != nil {
		return err
	}
	w, err := playlist.ParseGateway(body)
	switch {
	case errors.Is(err, playlist.ErrNotMedia) && rendition == "":
		// The channel's multivariant playlist: its URIs are relative, so the player asks
		// this proxy for the renditions.
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.Blob(http.StatusOK, "application/vnd.apple.mpegurl", body)
	case err != nil:
		return echo.NewHTTPError(http.StatusBadGateway, "gateway playlist: "+err.Error())
	}
	m.learn(rendition, w, p.cfg.Now(), true)
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/vnd.apple.mpegurl", playlist.Render(forPlayer(*w), playlist.ForPlayers))
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
// nor shared with neighbours.
func (p *Proxy) handleSegment(c echo.Context) error {
	m, err := p.channelMember(c)
	if err != nil {
		return err
	}
	ctx, name, rendition := c.Request().Context(), c.Param("name"), c.Param("rendition")
	h := c.Response().Header()
	var data []byte
	if info, ok := m.lookup(rendition, name, p.cfg.Now()); ok {
		seg, err := p.fetch(ctx, m, info, p.needBy(c.Request(), m, info))
		if err != nil {
			return err
		}
		if info.dur > 0 {
			m.head(rendition).served(info.seq, info.dur, p.cfg.Now())
		}
		data = seg.data
		h.Set("Cache-Control", "public, max-age=86400, immutable")
	} else {
		if !objectNameRe.MatchString(name) {
			return echo.NewHTTPError(http.StatusNotFound, "unknown object")
		}
		if data, err = p.gatewayGet(ctx, passThroughPath(m.channel, rendition, name, c.QueryString()), p.cfg.MaxSegmentBytes); err != nil {
			return err
		}
		h.Set("Cache-Control", "private, no-store")
		if path.Ext(name) != ".key" { // keys are not media: they do not count as delivery
			m.stats.bytesFromGateway.Add(int64(len(data)))
			m.stats.segmentsFromGateway.Add(1)
		}
	}
	h.Set(echo.HeaderContentType, contentType(name))
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(data))
	return nil
}

// needBy returns when the player asking r needs the segment: now plus the buffer it
// reports in CMCD, else what its playhead gives, else now (a start: urgent).
func (p *Proxy) needBy(r *http.Request, m *member, info segInfo) time.Time {
	now := p.cfg.Now()
	ph := m.head(info.rendition)
	if bl, ok := cmcdBuffer(r); ok {
		ph.observeBuffer(now, bl)
		return now.Add(bl)
	}
	if info.dur == 0 { // an init section: needed before any media
		return now
	}
	if at, ok := ph.deadline(info.seq, now); ok {
		return at
	}
	return now
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

// readBody reads a gateway response up to limit bytes and closes it.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		switch resp.StatusCode {
		case http.StatusNotFound:
			return nil, echo.NewHTTPError(http.StatusNotFound, "not found at the gateway")
		case http.StatusForbidden: // a signed URL's token was refused: tell the player so
			return nil, echo.NewHTTPError(http.StatusForbidden, "refused by the gateway")
		}
		return nil, fmt.Errorf("%w: %s", errGatewayStatus, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: body over %d bytes", errGatewayStatus, limit)
	}
	return data, nil
}

// contentType names a segment's media type from its extension, as the gateway does.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".aac":
		return "audio/aac"
	case ".vtt", ".webvtt":
		return "text/vtt"
	case ".mp4", ".m4s":
		return "video/mp4"
	case ".key":
		return "application/octet-stream"
	}
	return "video/mp2t"
}
