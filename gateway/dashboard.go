package gateway

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// The dashboard's API: figures now, series and breakdowns over a range, live updates (SSE)
// and CSV export, all read from the registry's stats buckets (see swarm.Bucket), so every
// gateway of a fleet answers the same. README, "Dashboard and stats API", documents it.

// Figures are a channel's (or all channels') headline numbers.
type Figures struct {
	Offload           float64 `json:"offload"`
	GatewayMbps       float64 `json:"gateway_mbps"`
	PeerMbps          float64 `json:"peer_mbps"`
	ViewersAssisted   int64   `json:"viewers_assisted"`
	ViewersDirect     int64   `json:"viewers_direct"`
	Stalls            int64   `json:"stalls"`
	StartupMillis     int64   `json:"startup_ms"`
	IntegrityFailures int64   `json:"integrity_failures"`
	PeersBanned       int64   `json:"peers_banned"`
	BytesSaved        int64   `json:"bytes_saved"`
	MoneySaved        float64 `json:"money_saved"`
}

// ChannelFigures are one channel's figures.
type ChannelFigures struct {
	Name string `json:"name"`
	Figures
}

// Overview is GET /api/v1/overview.
type Overview struct {
	GeneratedAt   int64            `json:"generated_at"`
	WindowSeconds int64            `json:"window_seconds"`
	PricePerGB    float64          `json:"price_per_gb"`
	Currency      string           `json:"currency"`
	Total         Figures          `json:"total"`
	Channels      []ChannelFigures `json:"channels"`
}

// Point is one step of a series.
type Point struct {
	T                 int64   `json:"t"`
	GatewayBytes      int64   `json:"gateway_bytes"`
	PeerBytes         int64   `json:"peer_bytes"`
	UploadedBytes     int64   `json:"uploaded_bytes"`
	Offload           float64 `json:"offload"`
	GatewayMbps       float64 `json:"gateway_mbps"`
	PeerMbps          float64 `json:"peer_mbps"`
	ViewersAssisted   int64   `json:"viewers_assisted"`
	ViewersDirect     int64   `json:"viewers_direct"`
	Stalls            int64   `json:"stalls"`
	Startups          int64   `json:"startups"`
	StartupMillis     int64   `json:"startup_ms"`
	IntegrityFailures int64   `json:"integrity_failures"`
	PeersBanned       int64   `json:"peers_banned"`
}

// Series is GET /api/v1/channels/{channel}/series.
type Series struct {
	Channel string  `json:"channel"`
	From    int64   `json:"from"`
	To      int64   `json:"to"`
	Step    int64   `json:"step_seconds"`
	Points  []Point `json:"points"`
}

// Split is one row of a breakdown.
type Split struct {
	Name         string  `json:"name"`
	GatewayBytes int64   `json:"gateway_bytes"`
	PeerBytes    int64   `json:"peer_bytes"`
	Offload      float64 `json:"offload"`
}

// Breakdown is GET /api/v1/channels/{channel}/breakdown.
type Breakdown struct {
	Channel    string       `json:"channel"`
	From       int64        `json:"from"`
	To         int64        `json:"to"`
	Renditions []Split      `json:"renditions"`
	Groups     []Split      `json:"groups"`
	Feeds      []swarm.Feed `json:"feeds"`
}

const (
	overviewWindow = time.Minute
	defaultRange   = 15 * time.Minute
	maxPoints      = 1440
	// maxEventStreams bounds the SSE connections served at once.
	maxEventStreams = 256
)

func mbps(bytes int64, over time.Duration) float64 {
	if over <= 0 {
		return 0
	}
	return float64(bytes) * 8 / over.Seconds() / 1e6
}

func meanMillis(total, n int64) int64 {
	if n == 0 {
		return 0
	}
	return total / n
}

// Overview returns the figures now: over the last minute of buckets, the registry's totals
// for what was saved.
func (s *Server) Overview(ctx context.Context) (Overview, error) {
	now := s.cfg.Now()
	ov := Overview{GeneratedAt: now.Unix(), WindowSeconds: int64(overviewWindow / time.Second),
		PricePerGB: s.cfg.PricePerGB, Currency: s.cfg.Currency, Channels: []ChannelFigures{}}
	var sum swarm.Counters
	names := make([]string, 0, len(s.channelMap()))
	for name := range s.channelMap() {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		st, err := s.reg.Stats(ctx, name)
		if err != nil {
			return Overview{}, err
		}
		f, c, err := s.figures(ctx, name, now, st)
		if err != nil {
			return Overview{}, err
		}
		ov.Channels = append(ov.Channels, ChannelFigures{Name: name, Figures: f})
		sum.Add(c)
		t := &ov.Total
		t.GatewayMbps += f.GatewayMbps
		t.PeerMbps += f.PeerMbps
		t.ViewersAssisted += f.ViewersAssisted
		t.ViewersDirect += f.ViewersDirect
		t.BytesSaved += f.BytesSaved
		t.MoneySaved += f.MoneySaved
	}
	ov.Total.Offload = sum.Offload()
	ov.Total.Stalls, ov.Total.IntegrityFailures, ov.Total.PeersBanned = sum.Stalls, sum.IntegrityFailures, sum.PeersBanned
	ov.Total.StartupMillis = meanMillis(sum.StartupMillis, sum.Startups)
	return ov, nil
}

// figures computes one channel's figures at now from the last minute of its buckets and
// its registry totals st, and returns the window's counters.
func (s *Server) figures(ctx context.Context, name string, now time.Time, st swarm.ChannelStats) (Figures, swarm.Counters, error) {
	bs, err := s.reg.Buckets(ctx, name, now.Add(-overviewWindow+swarm.BucketStep10), now, swarm.BucketStep10)
	if err != nil {
		return Figures{}, swarm.Counters{}, err
	}
	var w swarm.Bucket
	for _, b := range bs {
		w.Merge(b)
	}
	span := now.Sub(bs[0].Start)
	if len(bs) >= 2 { // the direct-viewer gauge of the newest complete step
		w.ViewersDirect = max(bs[len(bs)-1].ViewersDirect, bs[len(bs)-2].ViewersDirect)
	}
	f := Figures{
		Offload: w.Offload(), GatewayMbps: mbps(w.GatewayEgressBytes, span), PeerMbps: mbps(w.BytesFromPeers, span),
		ViewersAssisted: int64(st.ActivePeers), ViewersDirect: w.ViewersDirect,
		Stalls: w.Stalls, StartupMillis: meanMillis(w.StartupMillis, w.Startups),
		IntegrityFailures: w.IntegrityFailures, PeersBanned: w.PeersBanned,
		BytesSaved: st.BytesFromPeers, MoneySaved: float64(st.BytesFromPeers) / 1e9 * s.cfg.PricePerGB,
	}
	return f, w.Counters, nil
}

// span reads from, to (unix seconds) and step (seconds) of a series request, with their
// defaults; the step is raised to keep at most maxPoints points.
func span(c echo.Context, now time.Time) (from, to time.Time, step time.Duration, err error) {
	unix := func(name string, def time.Time) (time.Time, error) {
		v := c.QueryParam(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return time.Time{}, echo.NewHTTPError(http.StatusBadRequest, name+": want unix seconds")
		}
		return time.Unix(n, 0), nil
	}
	if to, err = unix("to", now); err != nil {
		return
	}
	if from, err = unix("from", to.Add(-defaultRange)); err != nil {
		return
	}
	if !from.Before(to) || to.Sub(from) > swarm.BucketRetention60 {
		return from, to, 0, echo.NewHTTPError(http.StatusBadRequest, "range: want from before to, at most 7 days")
	}
	step = swarm.BucketStep10
	if v := c.QueryParam("step"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n <= 0 || n > 86400 {
			return from, to, 0, echo.NewHTTPError(http.StatusBadRequest, "step: want seconds, 10 or a multiple of 60")
		}
		step = time.Duration(n) * time.Second
	}
	if step > swarm.BucketStep10 || to.Sub(from) > 4*time.Hour { // 10 s buckets are kept a day
		step = max(step, time.Minute)
	}
	if step > swarm.BucketStep10 && step%time.Minute != 0 {
		step = step.Truncate(time.Minute) + time.Minute
	}
	for to.Sub(from)/step >= maxPoints {
		step = (step/time.Minute + 1) * time.Minute
	}
	return from, to, step, nil
}

// ChannelSeries returns one channel's series.
func (s *Server) ChannelSeries(ctx context.Context, name string, from, to time.Time, step time.Duration) (Series, error) {
	if _, err := s.channel(name); err != nil {
		return Series{}, err
	}
	bs, err := s.reg.Buckets(ctx, name, from, to, step)
	if err != nil {
		return Series{}, err
	}
	out := Series{Channel: name, From: from.Unix(), To: to.Unix(), Step: int64(step / time.Second), Points: make([]Point, len(bs))}
	for i, b := range bs {
		out.Points[i] = Point{T: b.Start.Unix(), GatewayBytes: b.GatewayEgressBytes, PeerBytes: b.BytesFromPeers,
			UploadedBytes: b.BytesUploaded, Offload: b.Offload(), GatewayMbps: mbps(b.GatewayEgressBytes, step),
			PeerMbps: mbps(b.BytesFromPeers, step), ViewersAssisted: b.ViewersAssisted, ViewersDirect: b.ViewersDirect,
			Stalls: b.Stalls, Startups: b.Startups, StartupMillis: meanMillis(b.StartupMillis, b.Startups),
			IntegrityFailures: b.IntegrityFailures, PeersBanned: b.PeersBanned}
	}
	return out, nil
}

// ChannelBreakdown returns one channel's totals over a range, by rendition, by group and
// who fed whom.
func (s *Server) ChannelBreakdown(ctx context.Context, name string, from, to time.Time) (Breakdown, error) {
	if _, err := s.channel(name); err != nil {
		return Breakdown{}, err
	}
	bs, err := s.reg.Buckets(ctx, name, from, to, time.Minute)
	if err != nil {
		return Breakdown{}, err
	}
	var all swarm.Bucket
	for _, b := range bs {
		all.Merge(b)
	}
	splits := func(m map[string]swarm.Counters, gatewayBytes func(swarm.Counters) int64) []Split {
		out := []Split{}
		for n, c := range m {
			out = append(out, Split{Name: n, GatewayBytes: gatewayBytes(c), PeerBytes: c.BytesFromPeers, Offload: c.Offload()})
		}
		slices.SortFunc(out, func(a, b Split) int { return cmp.Compare(a.Name, b.Name) })
		return out
	}
	// Renditions: the gateway's own egress where it counted it, else what proxies got.
	renditions := splits(all.Renditions, func(c swarm.Counters) int64 { return max(c.GatewayEgressBytes, c.BytesFromGateway) })
	groups := splits(all.Groups, func(c swarm.Counters) int64 { return c.BytesFromGateway })
	feeds := all.Feeds
	if feeds == nil {
		feeds = []swarm.Feed{}
	}
	return Breakdown{Channel: name, From: from.Unix(), To: to.Unix(), Renditions: renditions, Groups: groups, Feeds: feeds}, nil
}

func (s *Server) dashboardRoutes(e *echo.Echo) {
	e.GET("/api/v1/overview", func(c echo.Context) error {
		ov, err := s.Overview(c.Request().Context())
		return noStoreJSON(c, ov, err)
	})
	e.GET("/api/v1/channels/:channel/series", func(c echo.Context) error {
		from, to, step, err := span(c, s.cfg.Now())
		if err != nil {
			return err
		}
		out, err := s.ChannelSeries(c.Request().Context(), c.Param("channel"), from, to, step)
		return noStoreJSON(c, out, err)
	})
	e.GET("/api/v1/channels/:channel/breakdown", func(c echo.Context) error {
		from, to, _, err := span(c, s.cfg.Now())
		if err != nil {
			return err
		}
		out, err := s.ChannelBreakdown(c.Request().Context(), c.Param("channel"), from, to)
		return noStoreJSON(c, out, err)
	})
	e.GET("/api/v1/channels/:channel/export.csv", s.handleExport)
	e.GET("/api/v1/events", s.handleEvents)
}

// noStoreJSON answers with a value or its error; figures change all the time: no caching.
func noStoreJSON(c echo.Context, v any, err error) error {
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, v)
}

// handleExport writes a channel's series as CSV.
func (s *Server) handleExport(c echo.Context) error {
	from, to, step, err := span(c, s.cfg.Now())
	if err != nil {
		return err
	}
	series, err := s.ChannelSeries(c.Request().Context(), c.Param("channel"), from, to, step)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="rawflow-%s-%d-%d.csv"`, series.Channel, series.From, series.To))
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	_ = w.Write([]string{"time", "gateway_bytes", "peer_bytes", "uploaded_bytes", "offload", "viewers_assisted", "viewers_direct",
		"stalls", "startups", "startup_ms", "integrity_failures", "peers_banned"})
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, p := range series.Points {
		_ = w.Write([]string{time.Unix(p.T, 0).UTC().Format(time.RFC3339), i(p.GatewayBytes), i(p.PeerBytes), i(p.UploadedBytes),
			strconv.FormatFloat(p.Offload, 'f', 4, 64), i(p.ViewersAssisted), i(p.ViewersDirect), i(p.Stalls), i(p.Startups),
			i(p.StartupMillis), i(p.IntegrityFailures), i(p.PeersBanned)})
	}
	w.Flush()
	return w.Error()
}

// overviewCache holds the overview the event streams send, so that however many streams
// are open the registry is read once per EventsInterval, not once per stream.
type overviewCache struct {
	mu sync.Mutex // guards the following fields; held while one caller computes
	ov Overview
	at time.Time
}

// sharedOverview returns an overview computed less than half an EventsInterval ago, or a
// fresh one.
func (s *Server) sharedOverview(ctx context.Context) (Overview, error) {
	c := &s.events
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := s.cfg.Now(); !c.at.IsZero() && now.Sub(c.at) < s.cfg.EventsInterval/2 {
		return c.ov, nil
	}
	ov, err := s.Overview(ctx)
	if err == nil {
		c.ov, c.at = ov, s.cfg.Now()
	}
	return ov, err
}

// handleEvents streams the overview as Server-Sent Events: one at once, then one every
// EventsInterval, until the client goes away.
func (s *Server) handleEvents(c echo.Context) error {
	if s.streams.Add(1) > maxEventStreams {
		s.streams.Add(-1)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "too many event streams")
	}
	defer s.streams.Add(-1)
	ctx := c.Request().Context()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx in front: do not buffer the stream
	c.Response().WriteHeader(http.StatusOK)
	tick := time.NewTicker(s.cfg.EventsInterval)
	defer tick.Stop()
	for {
		ov, err := s.sharedOverview(ctx)
		if err != nil {
			_, _ = fmt.Fprintf(c.Response(), ": stats unavailable\n\n")
		} else {
			b, _ := json.Marshal(ov)
			if _, err := fmt.Fprintf(c.Response(), "event: overview\ndata: %s\n\n", b); err != nil {
				return nil
			}
		}
		c.Response().Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
