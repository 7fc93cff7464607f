package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/rawflow/rawflow/swarm"
)

// The tracker API: proxies join a channel's swarm and heartbeat (announce), say what they
// hold (have), ask who holds a segment (lookup) and leave. Proxies never see the registry
// itself; the gateway checks every request and applies the address policy.

func (s *Server) trackerRoutes(e *echo.Echo) {
	g := e.Group("", s.trackerLimit(), middleware.BodyLimit(strconv.Itoa(swarm.MaxRequestBytes)))
	g.POST(swarm.PathAnnounce, s.handleAnnounce)
	g.POST(swarm.PathHave, s.handleHave)
	g.POST(swarm.PathLookup, s.handleLookup)
	g.POST(swarm.PathLeave, s.handleLeave)
}

// bindValid decodes a JSON body into v and validates it; any failure is a 400.
func bindValid[T interface{ Validate() error }](c echo.Context, v *T) error {
	if err := (&echo.DefaultBinder{}).BindBody(c, v); err != nil {
		return fmt.Errorf("%w: body: %v", swarm.ErrBadRequest, err)
	}
	if err := (*v).Validate(); err != nil {
		return err
	}
	return nil
}

func (s *Server) handleAnnounce(c echo.Context) error {
	var req swarm.AnnounceRequest
	if err := bindValid(c, &req); err != nil {
		return err
	}
	if _, err := s.channel(req.Channel); err != nil {
		return err
	}
	now := s.cfg.Now()
	if req.PeerID != "" {
		if err := checkPeerToken(s.cfg.PeerKey, req.Channel, req.PeerID, req.Token, now); err != nil {
			return err
		}
	}
	observed := c.RealIP()
	addr, err := advertisedAddr(req.Addr, observed)
	if err != nil && !req.Leech {
		return err
	}
	if !req.Leech && s.reports.isBanned(req.Channel, addr, now) {
		return echo.NewHTTPError(http.StatusForbidden, "banned: neighbours reported bad bytes or repeated failures from "+addr)
	}
	s.count(req.Channel, "tracker")
	if req.PeerID == "" {
		req.PeerID = newPeerID()
	}
	ctx := c.Request().Context()
	p := swarm.Peer{ID: req.PeerID, Channel: req.Channel, Addr: addr, Group: req.Group, PublicIP: observed, Leech: req.Leech}
	if err := s.reg.Join(ctx, p); err != nil {
		return err
	}
	if !req.Stats.IsZero() {
		if err := s.reg.AddStats(ctx, req.Channel, req.Stats); err != nil {
			return err
		}
	}
	if !req.Stats.IsZero() || len(req.Renditions) > 0 || len(req.FedBy) > 0 {
		// The totals are in; the time series is best effort (the dashboard's, not the
		// bill's): a failure here does not make the proxy send the same deltas again.
		sample := swarm.Sample{Group: req.Group, Counters: req.Stats, Renditions: req.Renditions, FedBy: req.FedBy}
		if err := s.reg.AddSample(ctx, req.Channel, now, sample); err != nil {
			s.log.Debug("stats sample not recorded", "channel", req.Channel, "err", err)
		}
	}
	s.handleReports(ctx, req)
	return c.JSON(http.StatusOK, swarm.AnnounceResponse{PeerID: req.PeerID, IntervalMS: s.cfg.AnnounceInterval.Milliseconds(),
		Token: peerToken(s.cfg.PeerKey, req.Channel, req.PeerID, now.Add(PeerTokenTTL))})
}

// handleReports logs the peers a peer reported (bad bytes, a redirect, failures in a row),
// and removes from the swarm those that reportsToBan peers reported.
func (s *Server) handleReports(ctx context.Context, req swarm.AnnounceRequest) {
	for _, bad := range req.Banned {
		if bad == req.PeerID {
			continue
		}
		addr := s.peerAddr(ctx, req.Channel, bad)
		s.log.Warn("a peer reports a neighbour (bad bytes, a redirect or failures in a row)", "channel", req.Channel, "reporter", req.PeerID, "peer", bad, "addr", addr)
		if s.reports.report(req.Channel, bad, addr, req.PeerID, s.cfg.Now()) {
			s.log.Warn("peer banned as an uploader: reported by several peers", "channel", req.Channel, "peer", bad, "addr", addr, "for", bannedFor)
			banned := swarm.Counters{PeersBanned: 1}
			if err := errors.Join(s.reg.Leave(ctx, req.Channel, bad), s.reg.AddStats(ctx, req.Channel, banned),
				s.reg.AddSample(ctx, req.Channel, s.cfg.Now(), swarm.Sample{Gateway: true, Counters: banned})); err != nil {
				// The address stays refused as an uploader (reports); the registry may
				// list the peer until its registration expires.
				s.log.Warn("registry not updated for a banned peer", "channel", req.Channel, "peer", bad, "err", err)
			}
		}
	}
}

// peerAddr returns the advertised address of a live peer, or "" when the registry does not
// know it.
func (s *Server) peerAddr(ctx context.Context, channel, id string) string {
	p, ok, err := s.reg.Peer(ctx, channel, id)
	if err != nil || !ok {
		return ""
	}
	return p.Addr
}

// peerRequest is a tracker call made as an admitted peer: all but announce.
type peerRequest interface {
	Validate() error
	Caller() (channel, id, token string)
}

// bindPeer decodes and validates a peer's tracker call (400), checks its channel (404) and
// its peer token (401), and counts it.
func bindPeer[T peerRequest](s *Server, c echo.Context) (T, error) {
	var req T
	if err := bindValid(c, &req); err != nil {
		return req, err
	}
	channel, id, token := req.Caller()
	if _, err := s.channel(channel); err != nil {
		return req, err
	}
	s.count(channel, "tracker")
	return req, checkPeerToken(s.cfg.PeerKey, channel, id, token, s.cfg.Now())
}

func (s *Server) handleHave(c echo.Context) error {
	req, err := bindPeer[swarm.HaveRequest](s, c)
	if err != nil {
		return err
	}
	if err := s.reg.Have(c.Request().Context(), req.Channel, req.PeerID, req.Digests); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleLookup(c echo.Context) error {
	req, err := bindPeer[swarm.LookupRequest](s, c)
	if err != nil {
		return err
	}
	asker := swarm.Peer{ID: req.PeerID, Channel: req.Channel, Group: req.Group, PublicIP: c.RealIP(), Leech: req.Leech}
	holders, elected, err := s.reg.Lookup(c.Request().Context(), req.Channel, req.Digest, asker,
		swarm.LookupQuery{Limit: s.cfg.LookupLimit, Late: req.Late})
	if err != nil {
		return err
	}
	if holders == nil {
		holders = []swarm.Holder{}
	}
	return c.JSON(http.StatusOK, swarm.LookupResponse{Holders: holders, Fetch: elected})
}

func (s *Server) handleLeave(c echo.Context) error {
	req, err := bindPeer[swarm.LeaveRequest](s, c)
	if err != nil {
		return err
	}
	if err := s.reg.Leave(c.Request().Context(), req.Channel, req.PeerID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// advertisedAddr applies the address policy: a peer may advertise a loopback, private or
// link-local address (its LAN), or the address its requests come from; an empty or
// unspecified host means the latter. Any other public address is refused, so the swarm
// cannot be pointed at a third party.
func advertisedAddr(claimed, observed string) (string, error) {
	host, port, err := net.SplitHostPort(claimed)
	if err != nil {
		return "", fmt.Errorf("%w: addr %q: %v", swarm.ErrBadRequest, claimed, err)
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || ip.IsUnspecified():
		return net.JoinHostPort(observed, port), nil
	case ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.Equal(net.ParseIP(observed)):
		return net.JoinHostPort(ip.String(), port), nil
	}
	return "", fmt.Errorf("%w: addr %q: a public address other than your own (%s)", swarm.ErrBadRequest, claimed, observed)
}

func newPeerID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
