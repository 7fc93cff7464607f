package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// Cache-Control values by object type.
const (
	cacheSegment = "public, max-age=86400, immutable" // names embed the digest: never reused
	cacheError   = "public, max-age=1"
)

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
	if seg == nil { // another gateway of the fleet may have listed it a moment ago
		_, td := r.win.playlist(playlist.ForPlayers)
		seg = r.win.awaitSegment(c.Request().Context(), c.Param("name"), min(time.Duration(max(td, 1))*time.Second, 4*time.Second))
	}
	if seg == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such segment")
	}
	if seg.Kind != ingest.KindKey && c.Request().Method == http.MethodGet {
		if !s.held.admit(c.Request(), cellSegment{channel: ch.name, rendition: c.Param("rendition"), name: seg.Name}, s.cfg.Now()) {
			s.count(ch.name, "held")
			h := c.Response().Header()
			h.Set("Retry-After", "1")
			h.Set(swarm.HeldHeader, "1")
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the cell is getting this segment: wait for the swarm")
		}
		defer s.held.transfer()()
	}
	s.count(ch.name, "segment")
	s.countFetch(ch.name, c.Request().Header.Get(swarm.FetchHeader))
	if seg.Data == nil { // VOD: fetched on demand
		if seg, err = s.onDemand(c.Request().Context(), ch, r, seg); err != nil {
			return err
		}
	}
	if seg.Kind != ingest.KindKey && c.Request().Method == http.MethodGet {
		s.held.sent(int64(len(seg.Data)), s.cfg.Now()) // a VOD segment's bytes are known only now
	}
	h := c.Response().Header()
	// Shared, never modified header values: no allocation per request.
	h[echo.HeaderContentType] = httpx.ContentType(seg.Name)
	h["Cache-Control"] = cacheSegmentHeader
	if seg.Kind == ingest.KindKey {
		h["Cache-Control"] = cacheKeyHeader
	}
	h.Set("ETag", seg.ETag)
	// A deadline for this response only: the connection may serve more requests after it.
	rc := http.NewResponseController(c.Response())
	atRate := time.Duration(float64(len(seg.Data)) / float64(s.cfg.MinWriteRate) * float64(time.Second))
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout + atRate)) // the socket's clock, not cfg.Now
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	var w http.ResponseWriter = c.Response()
	if seg.Kind != ingest.KindKey {
		w = &pacedWriter{ResponseWriter: w, ctx: c.Request().Context(), p: s.pacer, high: c.Request().Header.Get(swarm.FetchHeader) == swarm.FetchRoot}
		if conn := httpx.Conn(c.Request().Context()); s.uplink != nil && conn != nil {
			defer s.uplink.track(conn)()
		}
	}
	httpx.ServeBytes(w, c.Request(), seg.Data)
	if c.Request().Method == http.MethodGet && seg.Kind != ingest.KindKey {
		ch.egress.Add(c.Response().Size)
		r.egress.Add(c.Response().Size)
	}
	return nil
}

// onDemand returns a VOD segment with its bytes, fetching them from the origin once
// however many requests ask at the same time.
func (s *Server) onDemand(ctx context.Context, ch *channel, r *rendition, placeholder *ingest.Segment) (*ingest.Segment, error) {
	store := r.win.vodStore()
	seg, err := store.get(ctx, placeholder, s.cfg.OriginTimeout, func(ctx context.Context) ([]byte, error) {
		return ch.origin.GetRange(ctx, placeholder.Src, placeholder.Range, s.cfg.MaxSegmentBytes)
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

// The Cache-Control header values of segments and keys; shared, never modified.
var (
	cacheSegmentHeader = []string{cacheSegment}
	cacheKeyHeader     = []string{"private, no-store"}
)
