package srt

import (
	"cmp"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

const (
	defaultMaxConns = 64 // connections per Listener (accepted or waiting in the backlog)
	acceptBacklog   = 8  // established connections waiting for Accept
)

var errListenerClosed = fmt.Errorf("srt: listener closed: %w", net.ErrClosed)

// Listener accepts SRT callers on one UDP port (listener mode). Several callers can be
// connected at once (up to 64, and 8 waiting for Accept); callers beyond that are rejected
// with reason 5 (backlog exceeded). All connections share the listener's socket: closing the
// Listener ends them too.
type Listener struct {
	sock   *net.UDPConn
	cfg    Config
	id     uint32 // our socket id in INDUCTION answers
	secret [32]byte
	start  time.Time

	backlog   chan *Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	maxConns int
	conns    map[uint32]*Conn // by our socket id, the Destination Socket ID of their packets
	byCaller map[callerKey]*established
}

// callerKey identifies a caller's connection attempt.
type callerKey struct {
	addr netip.AddrPort
	id   uint32 // the caller's socket id
}

// established remembers the CONCLUSION answer, to repeat it if the caller did not get it.
type established struct {
	conn *Conn
	resp []byte
}

// Listen binds a UDP listener at addr ("host:port"; port 0 picks one) for SRT callers.
// cfg.Latency is the least latency accepted connections use (a caller may ask for more) and
// cfg.PeerIdleTimeout applies to them; cfg.HandshakeTimeout is unused, as the listener keeps
// no state until a caller's CONCLUSION completes the handshake; cfg.StreamID is ignored (the
// stream id comes from each caller: see Conn.StreamID).
func Listen(addr string, cfg Config) (*Listener, error) {
	cfg = cfg.withDefaults()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("srt: listen %s: %w", addr, err)
	}
	sock, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("srt: listen %s: %w", addr, err)
	}
	l := &Listener{
		sock: sock, cfg: cfg, id: newSocketID(), start: time.Now(), maxConns: cmp.Or(max(cfg.MaxConns, 0), defaultMaxConns),
		backlog: make(chan *Conn, acceptBacklog), done: make(chan struct{}),
		conns: map[uint32]*Conn{}, byCaller: map[callerKey]*established{},
	}
	crand.Read(l.secret[:])
	l.wg.Add(1)
	go l.readLoop()
	return l, nil
}

// Accept waits for the next caller whose handshake completed.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select {
	case <-l.done:
		return nil, errListenerClosed
	default:
	}
	select {
	case c := <-l.backlog:
		return c, nil
	case <-l.done:
		return nil, errListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Addr returns the local UDP address.
func (l *Listener) Addr() net.Addr { return l.sock.LocalAddr() }

// Close ends every connection of the listener (sending each peer a SHUTDOWN), closes the
// socket and waits for all goroutines. Reads on its connections then return what was
// already received, followed by an error wrapping net.ErrClosed. Idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		conns := make([]*Conn, 0, len(l.conns))
		for _, c := range l.conns {
			conns = append(conns, c)
		}
		l.mu.Unlock()
		for _, c := range conns {
			c.end(errListenerClosed, true)
			c.wg.Wait()
		}
		close(l.done)
		l.sock.Close()
		l.wg.Wait()
	})
	return nil
}

func (l *Listener) readLoop() {
	defer l.wg.Done()
	buf := make([]byte, maxPacketSize+1) // one spare byte detects oversized datagrams
	for {
		n, from, err := l.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select { // transient error: do not spin on it
			case <-l.done:
				return
			case <-time.After(tickInterval):
			}
			continue
		}
		if n > maxPacketSize {
			continue
		}
		from = unmap(from)
		p, err := parsePacket(buf[:n])
		if err != nil {
			continue
		}
		now := time.Now()
		if p.control && p.ctrl == ctrlHandshake {
			l.handshake(p, from, now)
			continue
		}
		l.mu.Lock()
		c := l.conns[p.dest]
		l.mu.Unlock()
		if c != nil && c.peer == from {
			c.handlePacket(p, now)
		}
	}
}

// handshake answers INDUCTION statelessly (the cookie is all the state) and turns a
// CONCLUSION that echoes a valid cookie into a connection.
func (l *Listener) handshake(p packet, from netip.AddrPort, now time.Time) {
	hs, err := parseHandshake(p.body)
	if err != nil {
		return
	}
	switch hs.hsType {
	case hsInduction:
		l.send(handshake{
			version: 5, extField: hsMagic, isn: hs.isn, mtu: ourMTU, flowWindow: ourFlowWindow,
			hsType: hsInduction, socketID: l.id, cookie: l.cookie(from, now, 0), peerIP: encodePeerIP(from.Addr()),
		}, hs.socketID, from, now)
	case hsConclusion:
		l.conclusion(hs, from, now)
	}
	// WAVEAHAND/AGREEMENT (rendezvous) are not supported and get no answer.
}

func (l *Listener) conclusion(hs handshake, from netip.AddrPort, now time.Time) {
	key := callerKey{from, hs.socketID}
	l.mu.Lock()
	if e := l.byCaller[key]; e != nil {
		// Our answer was lost: the caller repeats its CONCLUSION.
		l.mu.Unlock()
		_, _ = l.sock.WriteToUDPAddrPort(e.resp, from)
		return
	}
	l.mu.Unlock()
	if hs.cookie != l.cookie(from, now, 0) && hs.cookie != l.cookie(from, now, -1) {
		return // no INDUCTION from there in the last minute or two: not a real caller
	}
	if reason := checkConclusion(hs); reason != 0 {
		l.reject(hs, reason, from, now)
		return
	}
	latency := max(l.cfg.Latency, time.Duration(hs.srt.sndLatency)*time.Millisecond)
	peerLatency := max(l.cfg.Latency, time.Duration(hs.srt.rcvLatency)*time.Millisecond)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.reject(hs, rejClose, from, now)
		return
	}
	if len(l.conns) >= l.maxConns || len(l.backlog) == cap(l.backlog) {
		l.reject(hs, rejBacklog, from, now)
		return
	}
	id := newSocketID()
	for l.conns[id] != nil {
		id = newSocketID()
	}
	c := newConn(connParams{
		sock: l.sock, peer: from, localID: id, peerID: hs.socketID, isn: hs.isn, latency: latency,
		idleTimeout: l.cfg.PeerIdleTimeout, streamID: hs.streamID,
		detach: func() { l.forget(id, key) },
	})
	resp := handshake{
		version: 5, extField: extFlagHSREQ, isn: hs.isn, mtu: ourMTU, flowWindow: ourFlowWindow,
		hsType: hsConclusion, socketID: id, peerIP: encodePeerIP(from.Addr()),
		srt: &hsExt{
			version: srtVersion, flags: ourFlags,
			rcvLatency: latencyMS(int64(latency)), sndLatency: latencyMS(int64(peerLatency)),
		},
		srtExtType: extHSRSP,
	}
	wire := l.packetFor(resp, hs.socketID, now)
	l.conns[id] = c
	l.byCaller[key] = &established{conn: c, resp: wire}
	l.backlog <- c // room checked above; only this goroutine sends
	c.run()
	_, _ = l.sock.WriteToUDPAddrPort(wire, from)
}

// checkConclusion returns the reject reason for a caller's CONCLUSION, or 0 to accept it.
func checkConclusion(hs handshake) uint32 {
	switch {
	case hs.version != 5:
		return rejVersion // an HSv4 (SRT < 1.3) caller
	case hs.srt == nil || hs.srtExtType != extHSREQ:
		return rejRogue
	case hs.srt.version < minPeerVersion:
		return rejVersion
	case hs.hasKM || hs.encryption != 0:
		return rejUnsecure // the caller has a passphrase; we cannot decrypt
	case hs.srt.flags&flagSTREAM != 0:
		return rejMessageAPI
	case hs.congestion != "" && hs.congestion != "live":
		return rejCongestion
	case hs.hasFilter:
		return rejFilter
	case hs.hasGroup:
		return rejGroup
	}
	return 0
}

func (l *Listener) reject(hs handshake, reason uint32, from netip.AddrPort, now time.Time) {
	l.send(handshake{
		version: 5, isn: hs.isn, mtu: ourMTU, flowWindow: ourFlowWindow,
		hsType: hsRejectBase + reason, socketID: l.id, peerIP: encodePeerIP(from.Addr()),
	}, hs.socketID, from, now)
}

func (l *Listener) packetFor(h handshake, dest uint32, now time.Time) []byte {
	p := controlPacket(ctrlHandshake, 0, h.appendTo(nil))
	p.timestamp = uint32(now.Sub(l.start) / time.Microsecond)
	p.dest = dest
	return p.appendTo(nil)
}

func (l *Listener) send(h handshake, dest uint32, to netip.AddrPort, now time.Time) {
	_, _ = l.sock.WriteToUDPAddrPort(l.packetFor(h, dest, now), to)
}

// forget stops routing to a connection that ended.
func (l *Listener) forget(id uint32, key callerKey) {
	l.mu.Lock()
	delete(l.conns, id)
	delete(l.byCaller, key)
	l.mu.Unlock()
}

// cookie is the SYN cookie for a caller address in the minute now+offset: a keyed hash,
// so that INDUCTION needs no state and a CONCLUSION proves the caller got our answer.
func (l *Listener) cookie(from netip.AddrPort, now time.Time, offset int64) uint32 {
	m := hmac.New(sha256.New, l.secret[:])
	var b [8 + 16 + 2]byte
	binary.BigEndian.PutUint64(b[:], uint64(now.Unix()/60+offset))
	a := from.Addr().As16()
	copy(b[8:], a[:])
	binary.BigEndian.PutUint16(b[24:], from.Port())
	m.Write(b[:])
	return binary.BigEndian.Uint32(m.Sum(nil))
}
