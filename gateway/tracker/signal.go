package tracker

import (
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
// plans named lately (evidence, as for reports), and only when that source has a stream on
// this gateway; an answer only to the peer whose offer, relayed here in the last
// offerMemory, it answers. Nothing else about a peer reaches another: its addresses (the
// SDP's candidates) go only to the peers the plans pair it with.

const (
	// offerMemory is how long a relayed offer may be answered.
	offerMemory = 30 * time.Second
	// maxOffers bounds the offers remembered; past it, those older than offerMemory are
	// dropped, and if none is, all (an answer then finds no offer: the dialer falls back).
	maxOffers = 65536
	// TURNCredentialTTL is how long the TURN credentials a Hello carries are valid.
	TURNCredentialTTL = 12 * time.Hour
)

// SignalResult says what became of a signal.
type SignalResult int

// What became of a signal.
const (
	SignalRelayed   SignalResult = iota // queued on the recipient's stream
	SignalUnpaired                      // the plans did not pair the two peers (or no offer to answer)
	SignalElsewhere                     // the recipient has no stream on this gateway
	SignalFull                          // the recipient's queue was full
	numSignalResults
)

// String names the result as metrics label it.
func (r SignalResult) String() string {
	return [...]string{"relayed", "unpaired", "elsewhere", "full"}[r]
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
	switch r := t.hub.relay(req, now); r {
	case SignalRelayed:
		return c.NoContent(http.StatusAccepted)
	case SignalUnpaired:
		return echo.NewHTTPError(http.StatusForbidden, "no plan pairs you with peer "+req.To+" (or no offer of its to answer)")
	case SignalElsewhere:
		return echo.NewHTTPError(http.StatusNotFound, "peer "+req.To+" has no event stream on this gateway")
	default:
		return echo.NewHTTPError(http.StatusServiceUnavailable, "peer "+req.To+" is not keeping up with its events")
	}
}

// relay queues req's signal on its recipient's stream, if the plans pair the two.
func (h *hub) relay(req swarm.SignalRequest, now time.Time) (r SignalResult) {
	defer func() { h.signals[r].Add(1) }()
	b, err := json.Marshal(swarm.SignalEvent{From: req.PeerID, Signal: req.Signal})
	if err != nil {
		return SignalUnpaired
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	from, to := h.subs[req.PeerID], h.subs[req.To]
	if from == nil || from.peer.Channel != req.Channel {
		return SignalUnpaired // its own stream is its membership
	}
	switch req.Kind {
	case swarm.SignalOffer:
		if at, ok := from.evidence[req.To]; !ok || now.Sub(at) > evidenceFor {
			return SignalUnpaired
		}
	default: // an answer
		k := offerKey{from: req.To, to: req.PeerID, session: req.Session}
		at, ok := h.offers[k]
		if !ok || now.Sub(at) > offerMemory {
			return SignalUnpaired
		}
		delete(h.offers, k)
	}
	if to == nil || to.peer.Channel != req.Channel {
		return SignalElsewhere
	}
	select {
	case to.out <- encodeEvent(swarm.EventSignal, b):
	default:
		return SignalFull
	}
	if req.Kind == swarm.SignalOffer {
		h.rememberOffer(offerKey{from: req.PeerID, to: req.To, session: req.Session}, now)
	}
	return SignalRelayed
}

// rememberOffer records a relayed offer for its answer (h.mu held).
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
