package tracker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// handleReport is POST PathReport: a peer's counter deltas, the neighbours it caught, and
// whether it leaves.
func (t *Tracker) handleReport(c echo.Context) error {
	var req swarm.ReportRequest
	now, err := t.peerCall(c, &req)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, _, _ := t.reg.Peer(ctx, req.Channel, req.PeerID)
	counted, cut, warn := t.meter.clamp(req.Channel, req.PeerID, p.Renditions, req, now)
	if cut && warn {
		t.log.Warn("a report over what its peer could have played or uploaded: cut", "channel", req.Channel,
			"peer", req.PeerID, "addr", c.RealIP(), "reported", req.Stats, "counted", counted.Stats)
	}
	// Cut or not, the breakdowns (renditions, feeding groups, paths) never add up to more
	// than the totals counted: clamp fits them.
	req.Stats, req.Renditions, req.FedBy, req.Paths = counted.Stats, counted.Renditions, counted.FedBy, counted.Paths
	// A stats failure blocks neither the judgement nor the leave: the proxy resends the
	// deltas (503), and a leaving peer has left.
	var statsErr error
	if !req.Stats.IsZero() {
		statsErr = t.reg.AddStats(ctx, req.Channel, req.Stats)
	}
	if statsErr == nil && (!req.Stats.IsZero() || len(req.Renditions) > 0 || len(req.FedBy) > 0 || len(req.Paths) > 0) {
		// The totals are in; the time series is best effort (the dashboard's, not the
		// bill's): a failure here does not make the proxy send the same deltas again.
		sample := swarm.Sample{Group: p.Group, Counters: req.Stats, Renditions: req.Renditions, FedBy: req.FedBy, Paths: req.Paths}
		if err := t.reg.AddSample(ctx, req.Channel, now, sample); err != nil {
			t.log.Debug("stats sample not recorded", "channel", req.Channel, "err", err)
		}
	}
	t.judge(ctx, req, c.RealIP(), now)
	if req.Leave {
		t.hub.kick(req.PeerID)
		if err := t.reg.Leave(ctx, req.Channel, req.PeerID); err != nil {
			return status(err)
		}
	}
	if statsErr != nil {
		return status(statsErr)
	}
	return c.NoContent(http.StatusNoContent)
}

// judge weighs the reports a peer, calling from ip, made of its neighbours: each counts
// only when this gateway's plans sent the reporter to the reported peer lately (see bans);
// reporters on a second address ban the reported peer.
func (t *Tracker) judge(ctx context.Context, req swarm.ReportRequest, ip string, now time.Time) {
	if len(req.Banned) == 0 {
		return
	}
	from := reporterAddress(ctx, t.reg, req.Channel, req.PeerID, ip)
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
		if !t.bans.report(req.Channel, bad, banKey(p), req.PeerID, from, now) {
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

// banKey is what a ban of p refuses as an uploader: its advertised address, or for a peer
// reached over WebRTC only (no address) its public address: an identity is free, an
// address is not.
func banKey(p swarm.Peer) string {
	if p.Addr == "" && p.PublicIP != "" {
		return "ice:" + p.PublicIP
	}
	return p.Addr
}

// reporterAddress is the address a reporter counts as (see bans): the host it advertises
// as an uploader — under the public address policy its own public address, under private
// or loopback its LAN host — else the address its calls come from.
func reporterAddress(ctx context.Context, reg Registry, channel, id, ip string) string {
	p, ok, err := reg.Peer(ctx, channel, id)
	if err != nil || !ok || p.Leech || p.Addr == "" {
		return ip
	}
	host, _, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return ip
	}
	return host
}

// peerCall is what a peer's POST goes through first (a report, a signal): its body read
// within ReportReadTimeout (a body trickled in holds a connection; per request, not
// http.Server.ReadTimeout, which would also cut the long-lived event streams) into req and
// validated, its channel served, its peer token valid, the limits passed. It returns now.
func (t *Tracker) peerCall(c echo.Context, req interface {
	Validate() error
	Caller() (channel, id, token string)
}) (time.Time, error) {
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(t.cfg.ReportReadTimeout))
	if err := (&echo.DefaultBinder{}).BindBody(c, req); err != nil {
		return time.Time{}, status(errors.Join(swarm.ErrBadRequest, errors.New("body: malformed JSON")))
	}
	if err := req.Validate(); err != nil {
		return time.Time{}, status(err)
	}
	channel, id, token := req.Caller()
	if !t.cfg.Served(channel) {
		return time.Time{}, echo.NewHTTPError(http.StatusNotFound, "unknown channel "+channel)
	}
	now := t.cfg.Now()
	if err := checkToken(t.cfg.PeerKey, channel, id, token, now); err != nil {
		return time.Time{}, status(err)
	}
	if reason, ok := t.admit(channel, c.RealIP(), id); !ok {
		return time.Time{}, refusal(c, reason)
	}
	return now, nil
}
