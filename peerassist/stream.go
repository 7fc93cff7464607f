package peerassist

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rawflow/rawflow/peerlink"
	"github.com/rawflow/rawflow/swarm"
)

// The member's event stream is its membership of the channel's swarm (see gateway/tracker):
// opened for the renditions its players play (the most recent swarm.MaxRenditionsPerPeer),
// as the peer it was when it has credentials; it brings the peer's ID and token, its plans,
// every new segment and fresh tokens. It is opened again when the renditions played change,
// when the proxy starts or stops offering uploads, and after a failure (with back-off).

const (
	// streamBackoff and maxStreamBackoff bound the pause before opening the stream again.
	streamBackoff    = 250 * time.Millisecond
	maxStreamBackoff = 10 * time.Second
	// playingWindow is how long a rendition counts as played after its last playlist
	// request.
	playingWindow = 30 * time.Second
)

// stream keeps the member's event stream open until ctx ends.
func (m *member) stream(ctx context.Context, p *Proxy) {
	backoff := streamBackoff
	for ctx.Err() == nil {
		rs := m.playingRenditions(p.cfg.Now(), playingWindow)
		if len(rs) == 0 { // no player yet (or any more): nothing to subscribe to
			select {
			case <-ctx.Done():
			case <-m.resub:
			}
			continue
		}
		rs = rs[:min(len(rs), swarm.MaxRenditionsPerPeer)]
		advertising := p.advertising()
		sub := swarm.Subscription{Channel: m.channel, Renditions: rs, Group: p.cfg.Group, Leech: !advertising,
			ICE: advertising && p.link != nil, NAT: p.nat.get()}
		if advertising {
			sub.Addr, sub.Cert = p.advertiseAddr(), p.certFP
		}
		err := m.session(ctx, p, sub, &backoff)
		m.subscribe(nil)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errResubscribe):
			continue // at once
		case errors.Is(err, swarm.ErrUnauthorized):
			p.log.Info("the gateway no longer knows this peer; joining afresh", "channel", m.channel)
			m.forget()
		case errors.Is(err, swarm.ErrForbidden) && advertising:
			p.log.Warn("the gateway refuses this proxy as an uploader (neighbours reported it); downloading only", "for", bannedQuiet)
			p.uplink.silence(p.cfg.Now().Add(bannedQuiet))
			continue
		case errors.Is(err, swarm.ErrRefused):
			m.stats.trackerRefused.Add(1)
		case errors.Is(err, swarm.ErrBadRequest):
			// E.g. an advertised address the gateway's policy does not allow: the proxy
			// keeps playing from the gateway, but its operator must know.
			p.log.Warn("the gateway refuses this proxy's event stream; playing from the gateway alone", "channel", m.channel, "err", err)
		default:
			p.log.Debug("event stream ended", "channel", m.channel, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-m.resub:
		}
		t.Stop()
		backoff = min(2*backoff, maxStreamBackoff)
	}
}

// bannedQuiet is how long a proxy the gateway refused as an uploader stays a leech (the
// gateway's ban lasts 10 minutes).
const bannedQuiet = 10 * time.Minute

// errResubscribe: what the stream subscribes to changed; it is opened again at once.
var errResubscribe = errors.New("subscription changed")

// session opens one event stream for sub and handles its events until it ends; backoff is
// reset once the gateway admits the peer.
func (m *member) session(ctx context.Context, p *Proxy, sub swarm.Subscription, backoff *time.Duration) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { // a change of what to subscribe to ends this stream
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.resub:
				cancel(errResubscribe)
				return
			case <-tick.C:
				if p.advertising() == sub.Leech || (!sub.Leech && p.advertiseAddr() != sub.Addr) || natMoves(sub.NAT, p.nat.get()) {
					cancel(errResubscribe)
					return
				}
			}
		}
	}()
	id, token := m.credentials()
	m.stats.trackerRequests.Add(1)
	err := p.tracker.Events(ctx, sub, id, token, func(ev swarm.Event) error {
		h := m.event(p, ev, sub.Renditions, backoff)
		// The NAT's first answer for the ports this hello announced comes before the
		// plan, if it comes within firstNATWait: a proxy behind a symmetric NAT
		// subscribes again, as such, at once.
		if h != nil && p.link != nil && p.nat.announce(p.gateway.Hostname(), *h) &&
			natMoves(sub.NAT, p.nat.await(ctx, firstNATWait)) {
			return errResubscribe
		}
		return nil
	})
	if cause := context.Cause(ctx); errors.Is(cause, errResubscribe) {
		return cause
	}
	return err
}

// event handles one event of the stream; it returns the hello, when the event was one.
func (m *member) event(p *Proxy, ev swarm.Event, rs []string, backoff *time.Duration) *swarm.Hello {
	switch ev.Name {
	case swarm.EventHello:
		var h swarm.Hello
		if json.Unmarshal(ev.Data, &h) != nil || !swarm.ValidPeerID(h.PeerID) {
			return nil
		}
		m.joined(h, p.cfg.Now())
		p.joined(h)
		m.subscribe(rs)
		*backoff = streamBackoff
		return &h
	case swarm.EventPlan:
		var plan swarm.Plan
		if json.Unmarshal(ev.Data, &plan) == nil {
			m.setPlan(plan)
			p.routes.learn(m.channel, plan)
		}
	case swarm.EventSignal:
		var se swarm.SignalEvent
		if p.link != nil && json.Unmarshal(ev.Data, &se) == nil && swarm.ValidPeerID(se.From) {
			sig := peerlink.Signal{Session: se.Session, Kind: se.Kind, SDP: se.SDP}
			if err := p.link.HandleSignal(key(m.channel, se.From), sig); err != nil {
				p.log.Debug("neighbour's signal refused", "peer", se.From, "err", err)
			}
		}
	case swarm.EventSegment:
		var se swarm.SegmentEvent
		if json.Unmarshal(ev.Data, &se) == nil {
			m.learnEvent(se, p.cfg.MaxSegmentBytes, p.cfg.Now())
		}
	case swarm.EventToken:
		var te swarm.TokenEvent
		if json.Unmarshal(ev.Data, &te) == nil && te.Token != "" {
			m.refreshToken(te, p.cfg.Now())
		}
	}
	return nil
}
