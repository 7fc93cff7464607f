package tracker

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

const (
	// pingEvery is how often an idle stream gets a comment: it keeps NATs and proxies'
	// idle timers from closing it, and finds dead clients.
	pingEvery = 15 * time.Second
	// writeTimeout bounds each write to a stream: a client that stops reading loses it.
	writeTimeout = 10 * time.Second
)

// ErrUnknownChannel reports a channel that the gateway does not serve.
var ErrUnknownChannel = fmt.Errorf("%w: unknown channel", swarm.ErrBadRequest)

// handleEvents is GET PathEvents: it admits the peer (a new one, or the one its credentials
// name), registers it in the cells it plays, and streams its events until it goes away.
func (t *Tracker) handleEvents(c echo.Context) error {
	sub, err := swarm.ParseSubscription(c.QueryParams())
	if err != nil {
		return status(err)
	}
	if !t.cfg.Served(sub.Channel) {
		return echo.NewHTTPError(http.StatusNotFound, "unknown channel "+sub.Channel)
	}
	now, ip := t.cfg.Now(), c.RealIP()
	id, _, resumed := swarm.ParseAuth(c.Request().Header.Get(echo.HeaderAuthorization))
	if resumed {
		_, token, _ := swarm.ParseAuth(c.Request().Header.Get(echo.HeaderAuthorization))
		resumed = checkToken(t.cfg.PeerKey, sub.Channel, id, token, now) == nil
	}
	if !resumed {
		id = ""
	}
	if reason, ok := t.admit(sub.Channel, ip, id); !ok {
		return refusal(c, reason)
	}
	if id == "" {
		id = newPeerID()
	}
	if !t.idents.open(ip, id, t.cfg.PeersPerAddress) {
		t.limits.refused[RefusedIdentities].Add(1)
		t.countRefusal(sub.Channel)
		return refusal(c, RefusedIdentities)
	}
	defer t.idents.close(ip, id)
	p := swarm.Peer{ID: id, Channel: sub.Channel, Group: sub.Group, PublicIP: ip, Leech: sub.Leech, ICE: sub.ICE}
	if !sub.Leech && sub.Addr != "" {
		if p.Addr, err = advertisedAddr(sub.Addr, ip, t.cfg.PeerAddrs); err != nil && !sub.ICE {
			return status(err)
		}
		// A proxy that takes WebRTC advertising an address neighbours may not dial (its LAN
		// address behind a NAT, say) is reached over WebRTC only.
		if p.Addr != "" {
			p.Cert = sub.Cert
		}
	}
	// Behind a symmetric NAT and with no address neighbours may dial, a peer reaches only
	// its own site's peers (over their LAN), and they it: its cells are its site's.
	if sub.NAT == swarm.NATSymmetric && p.Addr == "" {
		p.Site = ip
	}
	if !sub.Leech {
		if key := banKey(p); t.bans.isBanned(sub.Channel, key, now) {
			return echo.NewHTTPError(http.StatusForbidden, "banned: neighbours reported bad bytes or repeated failures from "+key)
		}
	}
	if t.streams.Add(1) > int64(t.cfg.MaxStreams) {
		t.streams.Add(-1)
		return status(errStreams)
	}
	defer t.streams.Add(-1)
	ctx := c.Request().Context()
	slots, err := t.reg.Subscribe(ctx, p, sub.Renditions)
	if err != nil {
		return status(err)
	}
	p.Renditions = sub.Renditions
	s := newSubscriber(p, slots)
	defer func() {
		if t.hub.remove(s) {
			t.hub.depart(ctx, p, t.cfg.Now())
		}
	}()
	return t.stream(c, s)
}

// stream writes the hello event, then s's events, pings and fresh tokens until the client
// goes away or the stream is ended.
func (t *Tracker) stream(c echo.Context, s *subscriber) error {
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx in front: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // the socket's clock, not cfg.Now
		_, err := w.Write(b)
		return err == nil
	}
	t.hub.add(s)
	t.hub.planFromCache(s) // queued: written with the hello, in one flush
	hello, _ := json.Marshal(swarm.Hello{PeerID: s.peer.ID, Token: t.token(s.peer), ReportMS: t.cfg.ReportInterval.Milliseconds(),
		AddrPolicy: t.cfg.PeerAddrs.String(), AllowOrigins: t.cfg.AllowOrigins, STUNPort: t.cfg.STUNPort, STUNAltPort: t.cfg.STUNAltPort,
		ICEServers: t.iceServers(s.peer.ID), SwarmKeys: swarm.ChannelKeys(t.cfg.PeerKey, s.peer.Channel, t.cfg.Now()),
		TimeMS: t.cfg.Now().UnixMilli()})
	if !write(encodeEvent(swarm.EventHello, hello)) || len(s.out) == 0 && rc.Flush() != nil {
		return nil
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	fresh := time.NewTicker(TokenTTL / 2)
	defer fresh.Stop()
	ctx := c.Request().Context()
	for {
		var b []byte
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
			return nil
		case b = <-s.out:
		case <-ping.C:
			b = []byte(": ping\n\n")
		case <-fresh.C:
			tok, _ := json.Marshal(swarm.TokenEvent{Token: t.token(s.peer),
				SwarmKeys: swarm.ChannelKeys(t.cfg.PeerKey, s.peer.Channel, t.cfg.Now()), TimeMS: t.cfg.Now().UnixMilli()})
			b = encodeEvent(swarm.EventToken, tok)
		}
		if !write(b) {
			return nil
		}
		if len(s.out) == 0 && rc.Flush() != nil {
			return nil
		}
	}
}

// token issues a fresh peer token for p.
func (t *Tracker) token(p swarm.Peer) string {
	return Token(t.cfg.PeerKey, p.Channel, p.ID, t.cfg.Now().Add(TokenTTL))
}

// refusal answers a call the limits refused: 429, and when to try again.
func refusal(c echo.Context, r Reason) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(1))
	msg := map[Reason]string{
		RefusedJoins:      "too many new peers from this address",
		RefusedPeer:       "too many calls from this peer",
		RefusedAddress:    "too many calls from this address",
		RefusedIdentities: "too many peers from this address at once",
	}[r]
	return echo.NewHTTPError(http.StatusTooManyRequests, msg)
}

// advertisedAddr applies the address policy to the neighbour port a peer advertises: an
// empty or unspecified host means the address its requests come from; a public address
// must be that one, so the swarm cannot be pointed at a third party; a private or loopback
// one only when the policy admits it, and link-local or special addresses never (see
// swarm.AddrPolicy), so honest proxies cannot be aimed at a viewer's own machine, LAN or
// a cloud metadata service.
func advertisedAddr(claimed, observed string, policy swarm.AddrPolicy) (string, error) {
	host, port, err := net.SplitHostPort(claimed)
	if err != nil {
		return "", fmt.Errorf("%w: addr %q: %w", swarm.ErrBadRequest, claimed, err)
	}
	if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%w: addr %q: want a port 1-65535", swarm.ErrBadRequest, claimed)
	}
	if host == "" {
		host = observed
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("%w: addr %q: want an IP address", swarm.ErrBadRequest, claimed)
	}
	if ip.IsUnspecified() {
		if ip, err = netip.ParseAddr(observed); err != nil {
			return "", fmt.Errorf("%w: addr %q: your address %q is not an IP address", swarm.ErrBadRequest, claimed, observed)
		}
	}
	ip = ip.Unmap()
	if !policy.Allows(ip) {
		return "", fmt.Errorf("%w: addr %s: not a neighbour address under this gateway's --peer-addrs %s", swarm.ErrBadRequest, ip, policy)
	}
	if o, err := netip.ParseAddr(observed); swarm.AddrPublic.Allows(ip) && (err != nil || ip != o.Unmap()) {
		return "", fmt.Errorf("%w: addr %q: a public address other than your own (%s)", swarm.ErrBadRequest, claimed, observed)
	}
	return net.JoinHostPort(ip.String(), port), nil
}
