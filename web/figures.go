package web

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// The API's figures, computed from Stats: the overview from the last minute of 10 s buckets
// and the totals; series and breakdowns from the buckets of a range.

const (
	overviewWindow = time.Minute
	defaultRange   = 15 * time.Minute
	maxPoints      = 1440
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

// overview returns the figures now: over the last minute of buckets, the totals for what
// was saved. A channel gone since Channels listed it is left out.
func (d *Dashboard) overview(ctx context.Context) (Overview, error) {
	now := d.cfg.Now()
	ov := Overview{GeneratedAt: now.Unix(), WindowSeconds: int64(overviewWindow / time.Second),
		PricePerGB: d.cfg.PricePerGB, Currency: d.cfg.Currency, Channels: []ChannelFigures{}}
	var sum swarm.Counters
	for _, name := range d.stats.Channels() {
		f, c, err := d.figures(ctx, name, now)
		if errors.Is(err, ErrUnknownChannel) {
			continue
		}
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
		t.UnconfirmedPeerBytes += f.UnconfirmedPeerBytes
		t.MoneySaved += f.MoneySaved
	}
	ov.Total.Offload = sum.ConfirmedOffload()
	ov.Total.Stalls, ov.Total.IntegrityFailures, ov.Total.PeersBanned = sum.Stalls, sum.IntegrityFailures, sum.PeersBanned
	ov.Total.TrackerRefused = sum.TrackerRefused
	ov.Total.StartupMillis = meanMillis(sum.StartupMillis, sum.Startups)
	return ov, nil
}

// figures computes one channel's figures at now from the last minute of its buckets and
// its totals, and returns the window's counters.
func (d *Dashboard) figures(ctx context.Context, name string, now time.Time) (Figures, swarm.Counters, error) {
	st, err := d.stats.Totals(ctx, name)
	if err != nil {
		return Figures{}, swarm.Counters{}, err
	}
	bs, err := d.stats.Buckets(ctx, name, now.Add(-overviewWindow+swarm.BucketStep10), now, swarm.BucketStep10)
	if err != nil {
		return Figures{}, swarm.Counters{}, err
	}
	var w swarm.Bucket
	for _, b := range bs {
		w.Merge(b)
	}
	span := overviewWindow
	if len(bs) > 0 {
		span = now.Sub(bs[0].Start)
	}
	if len(bs) >= 2 { // the direct-viewer gauge of the newest complete step
		w.ViewersDirect = max(bs[len(bs)-1].ViewersDirect, bs[len(bs)-2].ViewersDirect)
	}
	f := Figures{
		Offload: w.ConfirmedOffload(), GatewayMbps: mbps(w.GatewayEgressBytes, span), PeerMbps: mbps(w.ConfirmedPeerBytes(), span),
		ViewersAssisted: int64(st.ActivePeers), ViewersDirect: w.ViewersDirect,
		Stalls: w.Stalls, StartupMillis: meanMillis(w.StartupMillis, w.Startups),
		IntegrityFailures: w.IntegrityFailures, PeersBanned: w.PeersBanned, TrackerRefused: w.TrackerRefused,
		BytesSaved: st.ConfirmedPeerBytes(), MoneySaved: float64(st.ConfirmedPeerBytes()) / 1e9 * d.cfg.PricePerGB,
		UnconfirmedPeerBytes: st.UnconfirmedPeerBytes(),
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
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 || n > 1<<40 {
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

// series returns one channel's series.
func (d *Dashboard) series(ctx context.Context, name string, from, to time.Time, step time.Duration) (Series, error) {
	bs, err := d.stats.Buckets(ctx, name, from, to, step)
	if err != nil {
		return Series{}, err
	}
	out := Series{Channel: name, From: from.Unix(), To: to.Unix(), Step: int64(step / time.Second), Points: make([]Point, len(bs))}
	for i, b := range bs {
		out.Points[i] = Point{T: b.Start.Unix(), GatewayBytes: b.GatewayEgressBytes, PeerBytes: b.ConfirmedPeerBytes(),
			UploadedBytes: b.BytesUploaded, Offload: b.ConfirmedOffload(), GatewayMbps: mbps(b.GatewayEgressBytes, step),
			PeerMbps: mbps(b.ConfirmedPeerBytes(), step), ViewersAssisted: b.ViewersAssisted, ViewersDirect: b.ViewersDirect,
			Stalls: b.Stalls, Startups: b.Startups, StartupMillis: meanMillis(b.StartupMillis, b.Startups),
			IntegrityFailures: b.IntegrityFailures, PeersBanned: b.PeersBanned, TrackerRefused: b.TrackerRefused}
	}
	return out, nil
}

// breakdown returns one channel's totals over a range, by rendition, by group and who fed
// whom.
func (d *Dashboard) breakdown(ctx context.Context, name string, from, to time.Time) (Breakdown, error) {
	bs, err := d.stats.Buckets(ctx, name, from, to, time.Minute)
	if err != nil {
		return Breakdown{}, err
	}
	var all swarm.Bucket
	for _, b := range bs {
		all.Merge(b)
	}
	// Proxies report uploads per channel only: each row's peer bytes are cut by the share
	// of the range's peer bytes that uploads corroborate.
	share := 1.0
	if all.BytesFromPeers > 0 {
		share = float64(all.ConfirmedPeerBytes()) / float64(all.BytesFromPeers)
	}
	splits := func(m map[string]swarm.Counters, gatewayBytes func(swarm.Counters) int64) []Split {
		out := []Split{}
		for n, c := range m {
			split := swarm.Counters{BytesFromGateway: gatewayBytes(c), BytesFromPeers: int64(float64(c.BytesFromPeers) * share)}
			out = append(out, Split{Name: n, GatewayBytes: split.BytesFromGateway, PeerBytes: split.BytesFromPeers, Offload: split.Offload()})
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
	paths := all.Paths
	if paths == nil {
		paths = []swarm.PathBytes{}
	}
	return Breakdown{Channel: name, From: from.Unix(), To: to.Unix(), Renditions: renditions, Groups: groups, Feeds: feeds, Paths: paths}, nil
}
