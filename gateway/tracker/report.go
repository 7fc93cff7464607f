package tracker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// handleReport is POST PathReport: a peer's counter deltas, the neighbours it caught, and
// whether it leaves.
func (t *Tracker) handleReport(c echo.Context) error {
	// A body trickled in holds a connection: bound the time to read it. Per request, not
	// http.Server.ReadTimeout, which would also cut the long-lived event streams.
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(t.cfg.ReportReadTimeout))
	var req swarm.ReportRequest
	if err := (&echo.DefaultBinder{}).BindBody(c, &req); err != nil {
		return status(errors.Join(swarm.ErrBadRequest, errors.New("body: malformed JSON")))
	}
	if err := req.Validate(); err != nil {
		return status(err)
	}
	if !t.cfg.Served(req.Channel) {
		return echo.NewHTTPError(http.StatusNotFound, "unknown channel "+req.Channel)
	}
	now := t.cfg.Now()
	if err := checkToken(t.cfg.PeerKey, req.Channel, req.PeerID, req.Token, now); err != nil {
		return status(err)
	}
	if reason, ok := t.admit(req.Channel, c.RealIP(), req.PeerID); !ok {
		return refusal(c, reason)
	}
	ctx := c.Request().Context()
	if !req.Stats.IsZero() {
		if err := t.reg.AddStats(ctx, req.Channel, req.Stats); err != nil {
			return status(err)
		}
	}
	if !req.Stats.IsZero() || len(req.Renditions) > 0 || len(req.FedBy) > 0 {
		// The totals are in; the time series is best effort (the dashboard's, not the
		// bill's): a failure here does not make the proxy send the same deltas again.
		p, _, _ := t.reg.Peer(ctx, req.Channel, req.PeerID)
		sample := swarm.Sample{Group: p.Group, Counters: req.Stats, Renditions: req.Renditions, FedBy: req.FedBy}
		if err := t.reg.AddSample(ctx, req.Channel, now, sample); err != nil {
			t.log.Debug("stats sample not recorded", "channel", req.Channel, "err", err)
		}
	}
	t.judge(ctx, req, now)
	if req.Leave {
		t.hub.kick(req.PeerID)
		if err := t.reg.Leave(ctx, req.Channel, req.PeerID); err != nil {
			return status(err)
		}
	}
	return c.NoContent(http.StatusNoContent)
}

// judge weighs the reports a peer made of its neighbours: each counts only when this
// gateway's plans sent the reporter to the reported peer lately (see bans); the second
// such reporter bans the reported peer.
func (t *Tracker) judge(ctx context.Context, req swarm.ReportRequest, now time.Time) {
	for _, bad := range req.Banned {
		if bad == req.PeerID {
			continue
		}
		if !t.hub.witnessed(req.PeerID, bad, now) {
			t.log.Info("a report of a peer this one was never sent to: ignored", "channel", req.Channel, "reporter", req.PeerID, "peer", bad)
			continue
		}
		p, ok, err := t.reg.Peer(ctx, req.Channel, bad)
		if err != nil || !ok {
			continue
		}
		t.log.Warn("a peer reports a neighbour (bad bytes, a redirect or failures in a row)", "channel", req.Channel,
			"reporter", req.PeerID, "peer", bad, "addr", p.Addr)
		if !t.bans.report(req.Channel, bad, p.Addr, req.PeerID, now) {
			continue
		}
		t.log.Warn("peer banned as an uploader: reported by several peers it fed", "channel", req.Channel, "peer", bad, "addr", p.Addr, "for", bannedFor)
		t.hub.kick(bad)
		banned := swarm.Counters{PeersBanned: 1}
		if err := errors.Join(t.reg.Leave(ctx, req.Channel, bad), t.reg.AddStats(ctx, req.Channel, banned),
			t.reg.AddSample(ctx, req.Channel, now, swarm.Sample{Gateway: true, Counters: banned})); err != nil {
			t.log.Warn("registry not updated for a banned peer", "channel", req.Channel, "peer", bad, "err", err)
		}
	}
}
