package tracker

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API's credential is HMAC-SHA1 (coturn's use-auth-secret)
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// Relaying WebRTC signals (swarm/signal.go). An offer goes only to a source the caller's
// plans named lately (evidence, as for reports); an answer only to the peer whose offer,
// relayed to the caller in the last offerMemory, it answers. Nothing else about a peer
// reaches another: its addresses (the SDP's candidates) go only to the peers the plans pair
// it with.
//
// The gateway that holds the sender's event stream checks a signal (it made the sender's
// plans, and delivered the offers it answers); the one that holds the recipient's delivers
// it. On one gateway both are here. In a fleet (a registry that is also a SignalBus:
// swarm.Redis) a signal from a peer whose stream is elsewhere goes on the bus to be checked
// there, and a checked one whose recipient is elsewhere goes on the bus to be delivered
// there (swarm/fleetsignal.go); the caller is answered 202 once its signal is on its way.

const (
	// offerMemory is how long a relayed offer may be answered.
	offerMemory = 30 * time.Second
	// maxOffers bounds the offers remembered; past it, those older than offerMemory are
	// dropped, and if none is, all (an answer then finds no offer: the dialer falls back).
	maxOffers = 65536
	// TURNCredentialTTL is how long the TURN credentials a Hello carries are valid.
	TURNCredentialTTL = 12 * time.Hour
	// publishTimeout bounds a publication on the signal bus; outboxLen bounds the signals
	// from the bus waiting to go back on it (checked here, to be delivered elsewhere).
	publishTimeout = 2 * time.Second
	outboxLen      = 256
)

// SignalBus carries signals between the gateways of a fleet (swarm.Redis).
type SignalBus interface {
	PublishSignal(ctx context.Context, m swarm.FleetSignal) error
	ReceiveSignals(ctx context.Context, handle func(swarm.FleetSignal)) error
}

// SignalResult says what became of a signal.
type SignalResult int

// What became of a signal.
const (
	SignalRelayed   SignalResult = iota // queued on the recipient's stream
	SignalUnpaired                      // the plans did not pair the two peers (or no offer to answer)
	SignalElsewhere                     // the recipient (or the sender) has no stream on this gateway, nor a fleet to pass it to
	SignalFull                          // the recipient's queue was full
	SignalForwarded                     // passed to the fleet's other gateways
	numSignalResults
)

// String names the result as metrics label it.
func (r SignalResult) String() string {
	return [...]string{"relayed", "unpaired", "elsewhere", "full", "forwarded"}[r]
}

// offerKey is a relayed offer: dialer, recipient, session.
type offerKey struct{ from, to, session string }

// handleSignal is POST PathSignal.
func (t *Tracker) handleSignal(c echo.Context) error {
	var req swarm.SignalRequest
	now, err := t.peerCall(c, &req)
	if err != nil {
		return err
	}
	m := swarm.FleetSignal{Stage: swarm.FleetCheck, Channel: req.Channel, From: req.PeerID, To: req.To, Signal: req.Signal}
	switch r := t.hub.route(c.Request().Context(), m, now, false); r {
	case SignalRelayed, SignalForwarded:
		return c.NoContent(http.StatusAccepted)
	case SignalUnpaired:
		return echo.NewHTTPError(http.StatusForbidden, "no plan pairs you with peer "+req.To+" (or no offer of its to answer)")
	case SignalElsewhere:
		return echo.NewHTTPError(http.StatusNotFound, "peer "+req.To+" has no event stream on this gateway")
	default:
		return echo.NewHTTPError(http.StatusServiceUnavailable, "peer "+req.To+" is not keeping up with its events")
	}
}

// signalNotHere: a signal from the bus concerns peers with no stream on this gateway
// (another gateway's to handle); it is not counted here.
const signalNotHere SignalResult = -1

// route takes a signal as far as this gateway can: a check (a POST here, or a signal on the
// bus) is checked if its sender's stream is here, then delivered if its recipient's is
// here too. A POST whose sender's stream is elsewhere goes on the bus to be checked; a
// checked signal whose recipient's stream is elsewhere goes on the bus to be delivered; a
// delivery from the bus is delivered if its recipient's stream is here. Every result but
// signalNotHere is counted.
func (h *hub) route(ctx context.Context, m swarm.FleetSignal, now time.Time, fromBus bool) (r SignalResult) {
	defer func() {
		if r != signalNotHere {
			h.signals[r].Add(1)
		}
	}()
	bus := h.t.bus
	h.mu.Lock()
	checked := false
	if m.Stage == swarm.FleetCheck {
		from := h.subs[m.From]
		switch {
		case from == nil && fromBus:
			h.mu.Unlock()
			return signalNotHere
		case from == nil && bus != nil:
			h.mu.Unlock()
			return h.publish(ctx, m)
		case from == nil || from.peer.Channel != m.Channel:
			h.mu.Unlock()
			return SignalUnpaired // its own stream is its membership
		}
		if !h.pairedLocked(from, m, now) {
			h.mu.Unlock()
			return SignalUnpaired
		}
		m.Stage, checked = swarm.FleetDeliver, true
	}
	to := h.subs[m.To]
	if to == nil || to.peer.Channel != m.Channel {
		h.mu.Unlock()
		switch {
		case checked && bus != nil && fromBus:
			return h.publishLater(m) // not on the bus's own reader
		case checked && bus != nil:
			return h.publish(ctx, m)
		case fromBus:
			return signalNotHere
		}
		return SignalElsewhere
	}
	defer h.mu.Unlock()
	select {
	case to.out <- encodeSignal(m):
	default:
		return SignalFull
	}
	if m.Kind == swarm.SignalOffer {
		h.rememberOffer(offerKey{from: m.From, to: m.To, session: m.Session}, now)
	}
	return SignalRelayed
}

// pairedLocked reports whether the plans pair a signal's sender (from, whose stream is
// here) with its recipient: an offer's recipient is a source its plans named lately; an
// answer answers an offer delivered to its sender here lately, which it uses up (h.mu
// held).
func (h *hub) pairedLocked(from *subscriber, m swarm.FleetSignal, now time.Time) bool {
	if m.Kind == swarm.SignalOffer {
		at, ok := from.evidence[m.To]
		return ok && now.Sub(at) <= evidenceFor
	}
	k := offerKey{from: m.To, to: m.From, session: m.Session}
	at, ok := h.offers[k]
	delete(h.offers, k)
	return ok && now.Sub(at) <= offerMemory
}

// encodeSignal is the signal event of m.
func encodeSignal(m swarm.FleetSignal) []byte {
	b, _ := json.Marshal(swarm.SignalEvent{From: m.From, Signal: m.Signal}) // strings only: cannot fail
	return encodeEvent(swarm.EventSignal, b)
}

// rememberOffer records an offer delivered here, for its answer (h.mu held).
func (h *hub) rememberOffer(k offerKey, now time.Time) {
	if len(h.offers) >= maxOffers {
		for k, at := range h.offers {
			if now.Sub(at) > offerMemory {
				delete(h.offers, k)
			}
		}
		if len(h.offers) >= maxOffers {
			clear(h.offers)
		}
	}
	h.offers[k] = now
}

// publish puts m on the fleet's signal bus.
func (h *hub) publish(ctx context.Context, m swarm.FleetSignal) SignalResult {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := h.t.bus.PublishSignal(ctx, m); err != nil {
		h.t.log.Warn("signal not passed to the fleet", "err", err)
		return SignalElsewhere
	}
	return SignalForwarded
}

// publishLater queues m for the bus (sendSignals publishes it); a full queue drops it, as a
// full recipient's queue does.
func (h *hub) publishLater(m swarm.FleetSignal) SignalResult {
	select {
	case h.outbox <- m:
		return SignalForwarded
	default:
		return SignalFull
	}
}

// sendSignals publishes the queued signals until ctx ends.
func (t *Tracker) sendSignals(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-t.hub.outbox:
			t.hub.publish(ctx, m)
		}
	}
}

// receiveSignals routes the signals of the fleet's bus until ctx ends.
func (t *Tracker) receiveSignals(ctx context.Context) {
	for ctx.Err() == nil {
		err := t.bus.ReceiveSignals(ctx, func(m swarm.FleetSignal) { t.hub.route(ctx, m, t.cfg.Now(), true) })
		if err != nil && ctx.Err() == nil {
			t.log.Warn("fleet signal bus", "err", err)
			wait := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-wait.C:
			}
			wait.Stop()
		}
	}
}

// iceServers returns the ICE servers a Hello for peer id names: TURN servers without a
// username get credentials for id from TURNSecret.
func (t *Tracker) iceServers(id string) []swarm.ICEServer {
	if len(t.cfg.ICEServers) == 0 {
		return nil
	}
	out := make([]swarm.ICEServer, 0, len(t.cfg.ICEServers))
	for _, s := range t.cfg.ICEServers {
		if s.Username == "" && len(t.cfg.TURNSecret) > 0 && isTURN(s) {
			s.Username, s.Credential = TURNCredential(t.cfg.TURNSecret, id, t.cfg.Now().Add(TURNCredentialTTL))
		}
		out = append(out, s)
	}
	return out
}

func isTURN(s swarm.ICEServer) bool {
	for _, u := range s.URLs {
		if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
			return true
		}
	}
	return false
}

// TURNCredential returns the TURN REST API credentials (coturn --use-auth-secret) for
// peer id, valid until expiry: username EXPIRY:ID, credential base64(HMAC-SHA1(secret,
// username)).
func TURNCredential(secret []byte, id string, expiry time.Time) (username, credential string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + id
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
