package peerlink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Signal is one signalling message between two peers, relayed by the gateway as JSON.
type Signal struct {
	Session string `json:"session"` // the dialer's random ID for one peer connection (32 hex)
	Kind    string `json:"kind"`    // KindOffer or KindAnswer
	SDP     string `json:"sdp"`     // complete SDP (candidates gathered before sending), at most MaxSDPBytes
}

// Signal kinds.
const (
	KindOffer  = "offer"
	KindAnswer = "answer"
)

// MaxSDPBytes bounds the SDP of a Signal, both ways.
const MaxSDPBytes = 8 << 10

// maxPendingPerRemote bounds the inbound peer connections one remote may have
// still connecting; further offers from it are ignored.
const maxPendingPerRemote = 2

// acceptQueue bounds the inbound streams waiting for Accept.
const acceptQueue = 64

// ICEServer is a STUN or TURN server. URLs look like "stun:host:port" or
// "turn:host:port?transport=udp".
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Config configures a Link. The zero value of each field is documented beside it.
type Config struct {
	// ICEServers are the STUN and TURN servers to gather candidates from; none means
	// host candidates only.
	ICEServers []ICEServer
	// Send delivers s to the remote `to` through the gateway. Called for offers (by Dial)
	// and answers (by HandleSignal). Required.
	Send func(ctx context.Context, to string, s Signal) error
	// MaxPeers bounds the peer connections at once, both directions (0 means 64). Past it
	// Dial fails with ErrTooManyPeers and offers are ignored.
	MaxPeers int
	// HandshakeTimeout bounds signalling plus ICE, DTLS and SCTP coming up (0 means 10 s).
	HandshakeTimeout time.Duration
	// IdleTimeout closes a peer connection that has had no open stream for this long
	// (0 means 60 s).
	IdleTimeout time.Duration
	// RelayOnly makes peer connections use TURN relay candidates only (false: every
	// candidate type, the direct path preferred). For networks that must not reveal
	// addresses, and for tests.
	RelayOnly bool
	// IncludeLoopback gathers loopback host candidates (tests on 127.0.0.1 only).
	IncludeLoopback bool
	// IPFilter, if set, keeps only the local addresses it returns true for when gathering
	// host candidates (nil: every interface address).
	IPFilter func(net.IP) bool
	// UDPConn, if set, carries all of this Link's ICE traffic (one UDP port for every peer
	// connection, e.g. a fixed firewall port). The Link closes it on Close. Nil means each
	// peer connection gathers on its own ephemeral ports (PortMin..PortMax).
	UDPConn net.PacketConn
	// PortMin and PortMax bound the ephemeral UDP ports used without UDPConn (0 means any).
	PortMin, PortMax uint16
	// Logger receives debug lines about failed peer connections (nil means discard).
	Logger *slog.Logger
}

// Errors returned by Dial and HandleSignal.
var (
	ErrClosed       = errors.New("peerlink: link closed")
	ErrTooManyPeers = errors.New("peerlink: too many peer connections")
	ErrHandshake    = errors.New("peerlink: peer connection did not come up")
	ErrBadSignal    = errors.New("peerlink: bad signal")
)

// Link makes and accepts streams to remotes over WebRTC data channels.
type Link struct {
	cfg        Config
	iceServers []webrtc.ICEServer
	api        *webrtc.API
	log        *slog.Logger
	ctx        context.Context // canceled by Close; ends every peer's owner goroutine
	cancel     context.CancelFunc
	mux        ice.UDPMux // nil without cfg.UDPConn
	ln         *listener
	stats      counters

	peersWG sync.WaitGroup // peer owner goroutines
	connsWG sync.WaitGroup // stream reader goroutines

	mu       sync.Mutex // guards the following fields
	closed   bool
	out      map[string]*peer // remote -> the peer connection this Link offered
	sessions map[string]*peer // session -> outbound peer waiting for its answer
	in       map[string]*peer // remote+"\x00"+session -> inbound peer connection
	pending  map[string]int   // remote -> inbound peer connections still connecting
	npeers   int
}

// New returns a Link; it makes no connection until Dial or HandleSignal.
func New(cfg Config) (*Link, error) {
	if cfg.Send == nil {
		return nil, errors.New("peerlink: Config.Send is required")
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 64
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("component", "peerlink")
	se := webrtc.SettingEngine{LoggerFactory: pionLogs{log: log}}
	se.DetachDataChannels()
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.IPFilter != nil {
		se.SetIPFilter(cfg.IPFilter)
	}
	// A neighbour that vanishes is noticed within ~15 s (not pion's 30 s), ending its streams.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("peerlink: port range: %w", err)
		}
	}
	servers, err := toWebRTC(cfg.ICEServers)
	if err != nil {
		return nil, err
	}
	l := &Link{
		cfg:        cfg,
		iceServers: servers,
		log:        log,
		out:        make(map[string]*peer),
		sessions:   make(map[string]*peer),
		in:         make(map[string]*peer),
		pending:    make(map[string]int),
	}
	if cfg.UDPConn != nil {
		l.mux = webrtc.NewICEUDPMux(pionLogs{log: log}.NewLogger("udpmux"), cfg.UDPConn)
		se.SetICEUDPMux(l.mux)
	}
	l.api = webrtc.NewAPI(webrtc.WithSettingEngine(se))
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.ln = &listener{l: l, ch: make(chan net.Conn, acceptQueue), done: make(chan struct{})}
	return l, nil
}

// Dial returns a new stream to remote `to`: over the peer connection this Link opened to
// `to` if there is one (a new data channel, no signalling), else over a new one (an offer
// through Send, completed by the answer given to HandleSignal). Bounded by ctx and
// HandshakeTimeout.
func (l *Link) Dial(ctx context.Context, to string) (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	p, fresh := l.out[to], false
	if p == nil {
		if l.npeers >= l.cfg.MaxPeers {
			l.mu.Unlock()
			l.stats.refused.Add(1)
			return nil, ErrTooManyPeers
		}
		var err error
		if p, err = l.newPeer(to, newSession(), true); err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.out[to], l.sessions[p.session] = p, p
		l.peersWG.Add(1) // under mu, so Close waits for it
		fresh = true
	}
	l.mu.Unlock()

	// The stream's data channel exists before the offer of a fresh peer connection, so the
	// offer carries the SCTP section; on an existing one it opens without signalling.
	w, err := p.openStream()
	if fresh {
		go p.run(p.ctx, "") //nolint:contextcheck // the peer connection is shared by later Dials and outlives this one
	}
	if err != nil {
		if fresh {
			p.abort()
		}
		return nil, fmt.Errorf("peerlink: dial %s: %w", to, err)
	}
	timer := time.NewTimer(l.cfg.HandshakeTimeout)
	defer timer.Stop()
	select {
	case <-w.ready:
		return w.c, nil
	case <-p.exited:
		err = p.failure()
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = ErrHandshake
		if fresh {
			// The peer connection this Dial made did not carry a stream in time: end it
			// now, so that the next Dial starts afresh instead of joining it.
			p.abort()
			<-p.exited
			err = p.failure()
		}
	}
	w.abandon()
	return nil, fmt.Errorf("peerlink: dial %s: %w", to, err)
}

// HandleSignal handles a signal the gateway relayed from remote `from`: an offer is
// answered through Send (asynchronously, within HandshakeTimeout); an answer completes
// the Dial waiting for its session. Anything else is ignored and reported as an error
// wrapping ErrBadSignal (or ErrClosed, ErrTooManyPeers), for logging.
func (l *Link) HandleSignal(from string, s Signal) error {
	if !validSession(s.Session) || len(s.SDP) == 0 || len(s.SDP) > MaxSDPBytes {
		return fmt.Errorf("%w: malformed", ErrBadSignal)
	}
	if s.Kind != KindOffer && s.Kind != KindAnswer {
		return fmt.Errorf("%w: kind %q", ErrBadSignal, s.Kind)
	}
	if _, err := (&webrtc.SessionDescription{SDP: s.SDP}).Unmarshal(); err != nil {
		return fmt.Errorf("%w: sdp: %w", ErrBadSignal, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	switch s.Kind {
	case KindAnswer:
		p := l.sessions[s.Session]
		if p == nil || p.remote != from {
			return fmt.Errorf("%w: answer for unknown session", ErrBadSignal)
		}
		delete(l.sessions, s.Session)
		p.answer <- s.SDP // buffered 1; the session is deleted, so only one is ever sent
		return nil
	case KindOffer:
		key := from + "\x00" + s.Session
		if l.in[key] != nil {
			return fmt.Errorf("%w: duplicate offer", ErrBadSignal)
		}
		if l.npeers >= l.cfg.MaxPeers || l.pending[from] >= maxPendingPerRemote {
			l.stats.refused.Add(1)
			return ErrTooManyPeers
		}
		p, err := l.newPeer(from, s.Session, false)
		if err != nil {
			return err
		}
		l.in[key] = p
		l.pending[from]++
		l.peersWG.Add(1)
		go p.run(p.ctx, s.SDP)
		return nil
	default:
		return fmt.Errorf("%w: kind %q", ErrBadSignal, s.Kind)
	}
}

// Listener returns the listener of streams remotes opened to this Link.
func (l *Link) Listener() net.Listener { return l.ln }

// Close closes every peer connection and stream and the listener, and returns once no
// goroutine of the Link is left.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.ln.Close()
	l.peersWG.Wait()
	l.connsWG.Wait()
	if l.mux != nil {
		_ = l.mux.Close()
	}
	for {
		select {
		case c := <-l.ln.ch:
			c.Close()
		default:
			return nil
		}
	}
}

// Stats returns a snapshot of the Link's counters.
func (l *Link) Stats() Stats {
	up := make(map[string]int, len(connTypes))
	l.mu.Lock()
	n := l.npeers
	count := func(p *peer) {
		if t := p.upType(); t != "" {
			up[t]++
		}
	}
	for _, p := range l.out {
		count(p)
	}
	for _, p := range l.in {
		count(p)
	}
	l.mu.Unlock()
	return l.stats.snapshot(up, n)
}

// ConnType reports how a stream from Dial or Accept travels: "relay" if either selected
// ICE candidate is a relay, else "srflx" or "prflx" if either is, else "host"; "" for a
// conn that is not a peerlink stream.
func ConnType(c net.Conn) string {
	pc, ok := c.(*conn)
	if !ok {
		return ""
	}
	return pc.peer.connType()
}

func newSession() string {
	var b [16]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	return hex.EncodeToString(b[:])
}

func validSession(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
