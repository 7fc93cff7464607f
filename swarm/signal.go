package swarm

import "regexp"

// Signalling: how two proxies that cannot open a TCP connection to each other (both behind
// NATs) set up a WebRTC peer connection (package peerlink) through the gateway. The one that
// fetches (the dialer) POSTs an offer to PathSignal naming the neighbour its plan gave it;
// the gateway relays it as a signal event on that neighbour's event stream; the neighbour
// POSTs its answer back the same way. The gateway relays an offer only to a source the
// dialer's plans named (so no peer can reach, or learn the addresses of, peers the gateway
// did not pair it with), and an answer only to the peer whose offer it answers. SDP carries
// the DTLS certificate fingerprint, so the connection that comes up is with the peer the
// gateway relayed for: the signalling path is the admission.
const (
	PathSignal  = "/api/v1/swarm/signal"
	EventSignal = "signal"
	// SignalOffer and SignalAnswer are a signal's kinds.
	SignalOffer  = "offer"
	SignalAnswer = "answer"
	// MaxSDPBytes bounds a signal's SDP.
	MaxSDPBytes = 8 << 10
	// MaxICEServers bounds the ICE servers a Hello names.
	MaxICEServers = 8
)

var sessionRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// SignalRequest is POST PathSignal: a signal from the caller to peer To.
type SignalRequest struct {
	PeerID  string `json:"peer_id"`
	Channel string `json:"channel"`
	Token   string `json:"token"`
	To      string `json:"to"`
	Signal
}

// Signal is one signalling message: an offer or an answer, with a complete SDP (every
// candidate gathered before it is sent: one message each way per peer connection).
type Signal struct {
	// Session is the dialer's random ID for the peer connection (32 lower-case hex).
	Session string `json:"session"`
	Kind    string `json:"kind"`
	SDP     string `json:"sdp"`
}

// SignalEvent is a signal the gateway relays on the recipient's event stream.
type SignalEvent struct {
	From string `json:"from"`
	Signal
}

// Caller returns the channel, peer ID and peer token the request is made as.
func (r SignalRequest) Caller() (channel, id, token string) { return r.Channel, r.PeerID, r.Token }

// Validate checks the request's fields.
func (r SignalRequest) Validate() error {
	if err := checkChannelPeer(r.Channel, r.PeerID); err != nil {
		return err
	}
	if err := checkToken(r.Token); err != nil {
		return err
	}
	if err := checkRecipient(r.PeerID, r.To); err != nil {
		return err
	}
	return r.Signal.Validate()
}

// checkRecipient checks a signal's recipient: another peer's ID than its sender's.
func checkRecipient(from, to string) error {
	if !ValidPeerID(to) || to == from {
		return badf("to %q: want another peer's ID", to)
	}
	return nil
}

// Validate checks a signal's fields.
func (s Signal) Validate() error {
	if !sessionRe.MatchString(s.Session) {
		return badf("session %q: want 32 lower-case hex characters", s.Session)
	}
	if s.Kind != SignalOffer && s.Kind != SignalAnswer {
		return badf("kind %q: want %s or %s", s.Kind, SignalOffer, SignalAnswer)
	}
	if len(s.SDP) == 0 || len(s.SDP) > MaxSDPBytes {
		return badf("sdp: want 1 to %d bytes, got %d", MaxSDPBytes, len(s.SDP))
	}
	return nil
}

// ICEServer is a STUN or TURN server a Hello names, as WebRTC's RTCIceServer: URLs such as
// stun:host:3478 or turn:host:3478?transport=udp, and a TURN server's credentials.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}
