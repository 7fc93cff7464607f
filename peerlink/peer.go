package peerlink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// peer is one WebRTC peer connection to a remote, in one direction: offered by this Link
// (outbound, shared by its Dials to the remote) or answered (inbound, feeding the
// Listener). Its owner goroutine, run, negotiates, waits while it is in use, and closes it.
type peer struct {
	link     *Link
	remote   string
	session  string
	outbound bool
	pc       *webrtc.PeerConnection
	ctx      context.Context // ends the owner goroutine: Link closed, or aborted
	abort    context.CancelFunc
	created  time.Time
	answer   chan string   // outbound: the remote's answer SDP (buffered 1)
	up       chan struct{} // closed when ICE and DTLS are connected
	failed   chan struct{} // closed when the peer connection fails or closes
	exited   chan struct{} // closed when the owner goroutine starts closing the peer connection
	upOnce   sync.Once
	failOnce sync.Once

	mu       sync.Mutex // guards the following fields
	err      error      // why the handshake failed
	closed   bool
	isUp     bool
	typ      string // connection type, once known
	conns    int
	idleFrom time.Time // when conns last fell to 0
}

// newPeer makes a peer connection and counts it. l.mu must be held.
func (l *Link) newPeer(remote, session string, outbound bool) (*peer, error) {
	conf := webrtc.Configuration{ICEServers: l.iceServers}
	if l.cfg.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := l.api.NewPeerConnection(conf)
	if err != nil {
		return nil, fmt.Errorf("peerlink: new peer connection: %w", err)
	}
	now := time.Now()
	p := &peer{
		link: l, remote: remote, session: session, outbound: outbound, pc: pc, created: now,
		answer: make(chan string, 1), up: make(chan struct{}), failed: make(chan struct{}),
		exited: make(chan struct{}), idleFrom: now,
	}
	p.ctx, p.abort = context.WithCancel(l.ctx)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.upOnce.Do(func() { close(p.up) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			p.failOnce.Do(func() { close(p.failed) })
		default:
		}
	})
	if !outbound {
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			dc.OnOpen(func() {
				if c := p.attach(dc); c != nil {
					l.ln.offer(c)
				}
			})
		})
	}
	l.npeers++
	return p, nil
}

// run is the peer's owner goroutine: it negotiates within HandshakeTimeout, then keeps
// the peer connection until it fails, idles out, is aborted or the Link closes. Its ctx
// is the peer's own (p.ctx), not a caller's: the peer connection outlives the Dial or
// HandleSignal that made it.
func (p *peer) run(ctx context.Context, remoteSDP string) {
	l := p.link
	defer l.peersWG.Done()
	defer p.teardown()
	defer p.abort()
	hctx, cancel := context.WithTimeout(ctx, l.cfg.HandshakeTimeout)
	err := p.negotiate(hctx, remoteSDP)
	if err == nil {
		select {
		case <-p.up:
		case <-p.failed:
			err = errors.New("ICE or DTLS failed")
		case <-hctx.Done():
			err = hctx.Err()
		}
	}
	cancel()
	if err != nil {
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		if l.ctx.Err() == nil {
			l.stats.failed.Add(1)
			l.log.Debug("peer connection failed", "remote", p.remote, "outbound", p.outbound, "err", err)
		}
		return
	}
	l.stats.connectedIn(time.Since(p.created))
	p.markUp()
	p.idle(ctx)
}

// negotiate makes the offer (outbound) or the answer (inbound) and sends it through Send
// once candidates are gathered; outbound, it then applies the answer.
func (p *peer) negotiate(ctx context.Context, remoteSDP string) error {
	pc := p.pc
	if !p.outbound {
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: remoteSDP}); err != nil {
			return fmt.Errorf("offer: %w", err)
		}
	}
	var local webrtc.SessionDescription
	var err error
	if p.outbound {
		local, err = pc.CreateOffer(nil)
	} else {
		local, err = pc.CreateAnswer(nil)
	}
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(local); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gathering: %w", ctx.Err())
	}
	sig := Signal{Session: p.session, Kind: KindAnswer, SDP: pc.LocalDescription().SDP}
	if p.outbound {
		sig.Kind = KindOffer
	}
	if len(sig.SDP) > MaxSDPBytes {
		return fmt.Errorf("local SDP of %d bytes exceeds %d", len(sig.SDP), MaxSDPBytes)
	}
	if err := p.link.cfg.Send(ctx, p.remote, sig); err != nil {
		return fmt.Errorf("send %s: %w", sig.Kind, err)
	}
	if !p.outbound {
		return nil
	}
	select {
	case remoteSDP = <-p.answer:
	case <-ctx.Done():
		return fmt.Errorf("waiting for answer: %w", ctx.Err())
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: remoteSDP}); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return nil
}

// failure is the error a Dial reports when the peer connection ended before its stream
// opened.
func (p *peer) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		return ErrHandshake
	}
	return fmt.Errorf("%w: %w", ErrHandshake, p.err)
}

// markUp records the connection type and ends the inbound peer's pending count.
func (p *peer) markUp() {
	t := p.connType()
	p.mu.Lock()
	p.isUp = true
	p.mu.Unlock()
	if !p.outbound {
		p.link.mu.Lock()
		p.link.unpend(p.remote)
		p.link.mu.Unlock()
	}
	p.link.log.Debug("peer connection up", "remote", p.remote, "outbound", p.outbound, "type", t)
}

// idle returns when the peer connection fails, the Link closes, or no stream has been
// open for IdleTimeout.
func (p *peer) idle(ctx context.Context) {
	limit := p.link.cfg.IdleTimeout
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.failed:
			return
		case <-t.C:
			p.mu.Lock()
			n, since := p.conns, time.Since(p.idleFrom)
			p.mu.Unlock()
			if n == 0 && since >= limit {
				return
			}
			next := limit
			if n == 0 {
				next = limit - since
			}
			t.Reset(next)
		}
	}
}

// teardown forgets the peer and closes its peer connection (and with it every stream).
func (p *peer) teardown() {
	l := p.link
	l.mu.Lock()
	if l.out[p.remote] == p {
		delete(l.out, p.remote)
	}
	if l.sessions[p.session] == p {
		delete(l.sessions, p.session)
	}
	if key := p.remote + "\x00" + p.session; l.in[key] == p {
		delete(l.in, key)
	}
	p.mu.Lock()
	p.closed = true
	wasUp := p.isUp
	p.mu.Unlock()
	if !p.outbound && !wasUp {
		l.unpend(p.remote)
	}
	l.npeers--
	l.mu.Unlock()
	close(p.exited)
	done := make(chan struct{})
	go func() {
		_ = p.pc.GracefulClose()
		close(done)
	}()
	t := time.NewTimer(teardownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		l.log.Warn("a WebRTC peer connection did not close within its grace; left behind", "remote", p.remote, "grace", teardownGrace)
	}
}

// teardownGrace bounds the wait for a peer connection's graceful close. pion v4.2 can
// deadlock there (PeerConnection.GracefulClose waits, under the SCTP transport's lock, on
// a data channel's read loop, while the transport's accept loop waits for that lock): seen
// in a 1,000-viewer run, where it held 2 of 500 proxies' Link.Close, and so their process,
// for minutes after the run ended. The connection is then left to itself.
const teardownGrace = 5 * time.Second

// unpend ends one of remote's pending inbound peer connections. l.mu must be held.
func (l *Link) unpend(remote string) {
	if l.pending[remote]--; l.pending[remote] <= 0 {
		delete(l.pending, remote)
	}
}

// upType is the connection type of an up peer connection, "" while it is not up.
func (p *peer) upType() string {
	p.mu.Lock()
	up, t := p.isUp, p.typ
	p.mu.Unlock()
	if !up {
		return ""
	}
	if t == "" {
		t = p.connType()
	}
	return t
}

// connType is how the peer connection travels, from its selected ICE candidate pair;
// "" while none is selected.
func (p *peer) connType() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.typ != "" {
		return p.typ
	}
	sctp := p.pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return ""
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return ""
	}
	rank := func(t webrtc.ICECandidateType) int {
		switch t {
		case webrtc.ICECandidateTypeRelay:
			return 3
		case webrtc.ICECandidateTypeSrflx:
			return 2
		case webrtc.ICECandidateTypePrflx:
			return 1
		default:
			return 0
		}
	}
	remote := pair.Remote.Typ
	if remote == webrtc.ICECandidateTypePrflx {
		// A check that arrives before the remote's SDP is applied makes a peer-reflexive
		// candidate of an address the SDP then lists: report the type the remote signalled.
		if rd := p.pc.RemoteDescription(); rd != nil {
			remote = signalledType(rd.SDP, pair.Remote.Address, pair.Remote.Port, remote)
		}
	}
	names := [...]string{TypeHost, TypePrflx, TypeSrflx, TypeRelay}
	p.typ = names[max(rank(pair.Local.Typ), rank(remote))]
	return p.typ
}

// signalledType is the type of the candidate at address:port in sdp, or def if none is.
// A candidate line reads "a=candidate:foundation component transport priority address
// port typ type ...".
func signalledType(sdp, address string, port uint16, def webrtc.ICECandidateType) webrtc.ICECandidateType {
	want := strconv.Itoa(int(port))
	for line := range strings.Lines(sdp) {
		f := strings.Fields(strings.TrimPrefix(line, "a="))
		if len(f) < 8 || !strings.HasPrefix(f[0], "candidate:") || f[4] != address || f[5] != want || f[6] != "typ" {
			continue
		}
		if t, err := webrtc.NewICECandidateType(f[7]); err == nil {
			return t
		}
	}
	return def
}
