package srt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// handshakeResend is how often an unanswered handshake request is sent again (libsrt uses
// the same 250 ms).
const handshakeResend = 250 * time.Millisecond

// Dial connects in caller mode to an SRT listener at addr ("host:port", UDP) and returns the
// receiving connection. It fails if the handshake times out (HandshakeTimeout, or ctx),
// is rejected (the error is a *RejectError with the reason code), or the peer requires
// encryption (the error wraps ErrEncryptionUnsupported). ctx only bounds the handshake.
func Dial(ctx context.Context, addr string, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	if len(cfg.StreamID) > maxStreamIDLen {
		return nil, fmt.Errorf("srt: dial %s: stream id of %d bytes exceeds %d", addr, len(cfg.StreamID), maxStreamIDLen)
	}
	raddr, err := resolve(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("srt: dial %s: %w", addr, err)
	}
	network := "udp4"
	if !raddr.Addr().Is4() {
		network = "udp6"
	}
	sock, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("srt: dial %s: %w", addr, err)
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	res, err := callerHandshake(hctx, sock, raddr, cfg)
	if err != nil {
		sock.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v (is an SRT listener running there?): %w", cfg.HandshakeTimeout, os.ErrDeadlineExceeded)
		}
		return nil, fmt.Errorf("srt: handshake with %s: %w", addr, err)
	}
	c := newConn(connParams{
		sock: sock, peer: raddr, localID: res.localID, peerID: res.peerID, isn: res.isn,
		latency: res.latency, idleTimeout: cfg.PeerIdleTimeout, streamID: cfg.StreamID, ownsSock: true,
	})
	c.run()
	return c, nil
}

// resolve turns "host:port" into one UDP address, honouring ctx for DNS.
func resolve(ctx context.Context, addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	if ip, perr := netip.ParseAddr(host); perr == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	for _, ip := range ips { // prefer IPv4, what SRT encoders mostly listen on
		if ip.Unmap().Is4() {
			return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
		}
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("no address for %s", host)
	}
	return netip.AddrPortFrom(ips[0], uint16(p)), nil
}

type callerResult struct {
	localID, peerID, isn uint32
	latency              time.Duration
}

// newSocketID picks a random non-zero 31-bit SRT socket id (0 addresses a listener).
func newSocketID() uint32 {
	for {
		if id := rand.Uint32() & 0x3FFFFFFF; id != 0 {
			return id
		}
	}
}

// callerHandshake runs INDUCTION then CONCLUSION against the listener at raddr, resending
// every handshakeResend until an answer or ctx ends. It starts no goroutine that outlives it.
func callerHandshake(ctx context.Context, sock *net.UDPConn, raddr netip.AddrPort, cfg Config) (callerResult, error) {
	// Unblock the read below as soon as ctx ends. On the way out the deadline is cleared
	// for the connection's reader, and finished keeps a late callback from setting it again.
	// Neither can fail but on a closed socket, whose reads fail anyway.
	var mu sync.Mutex
	finished := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			_ = sock.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		stop()
		mu.Lock()
		finished = true
		_ = sock.SetReadDeadline(time.Time{})
		mu.Unlock()
	}()

	start := time.Now()
	res := callerResult{localID: newSocketID(), isn: rand.Uint32() & seqMask}
	req := handshake{
		version: 4, extField: udtDgram, isn: res.isn, mtu: ourMTU, flowWindow: ourFlowWindow,
		hsType: hsInduction, socketID: res.localID, peerIP: encodePeerIP(raddr.Addr()),
	}
	send := func() error {
		p := controlPacket(ctrlHandshake, 0, req.appendTo(nil))
		p.timestamp = uint32(time.Since(start) / time.Microsecond)
		p.dest = 0 // a connection request
		_, err := sock.WriteToUDPAddrPort(p.appendTo(nil), raddr)
		return err
	}
	buf := make([]byte, maxPacketSize+1)
	var lastSent time.Time
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if time.Since(lastSent) >= handshakeResend {
			if err := send(); err != nil {
				return res, err
			}
			lastSent = time.Now()
		}
		if err := sock.SetReadDeadline(lastSent.Add(handshakeResend)); err != nil {
			return res, err
		}
		n, from, err := sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // resend, or ctx ended
			}
			return res, err
		}
		if n > maxPacketSize || unmap(from) != raddr {
			continue
		}
		p, err := parsePacket(buf[:n])
		if err != nil || !p.control || p.ctrl != ctrlHandshake || p.dest != res.localID {
			continue
		}
		hs, err := parseHandshake(p.body)
		if err != nil {
			continue
		}
		if isRejectType(hs.hsType) {
			rej := &RejectError{Reason: hs.hsType - hsRejectBase}
			if isEncryptionReject(rej.Reason) {
				return res, fmt.Errorf("%w: %w", ErrEncryptionUnsupported, rej)
			}
			return res, rej
		}
		switch {
		case req.hsType == hsInduction && hs.hsType == hsInduction:
			if hs.version < 5 || hs.extField != hsMagic {
				return res, fmt.Errorf("listener answered handshake version %d (magic %#x): only HSv5 (SRT >= 1.3) is supported", hs.version, hs.extField)
			}
			if hs.encryption != 0 {
				return res, fmt.Errorf("listener advertises AES-%d: %w", int(hs.encryption)*64, ErrEncryptionUnsupported)
			}
			// The CONCLUSION still goes to socket id 0. The draft says to address it to
			// the Socket ID of the INDUCTION answer, but libsrt (1.5.1) puts the caller's
			// own id there and drops a CONCLUSION addressed to it: found against ffmpeg.
			req = conclusionRequest(req, hs.cookie, cfg)
			lastSent = time.Time{} // send the CONCLUSION now
		case req.hsType == hsConclusion && hs.hsType == hsConclusion:
			if hs.hasKM || hs.encryption != 0 {
				return res, ErrEncryptionUnsupported
			}
			if hs.version < 5 || hs.srt == nil || hs.srtExtType != extHSRSP {
				return res, fmt.Errorf("listener's CONCLUSION (version %d) has no HSRSP extension", hs.version)
			}
			if hs.srt.version < minPeerVersion {
				return res, fmt.Errorf("listener runs SRT %#x, HSv5 needs at least 1.3.0", hs.srt.version)
			}
			if hs.srt.flags&flagSTREAM != 0 {
				return res, errors.New("listener uses stream (file) mode; only live mode is supported")
			}
			res.peerID = hs.socketID
			res.isn = hs.isn
			// Latency is the larger of ours and what the listener asks for its sending
			// direction (the HSRSP's Sender TSBPD Delay).
			res.latency = max(cfg.Latency, time.Duration(hs.srt.sndLatency)*time.Millisecond)
			return res, nil
		}
		// Anything else (a late INDUCTION answer, a WAVEAHAND...) is ignored.
	}
}

// conclusionRequest turns the INDUCTION request into the CONCLUSION: HSv5, the listener's
// cookie, our HSREQ and the stream id.
func conclusionRequest(req handshake, cookie uint32, cfg Config) handshake {
	req.version = 5
	req.hsType = hsConclusion
	req.cookie = cookie
	req.extField = extFlagHSREQ
	ms := latencyMS(int64(cfg.Latency))
	req.srt = &hsExt{version: srtVersion, flags: ourFlags, rcvLatency: ms, sndLatency: ms}
	req.srtExtType = extHSREQ
	if cfg.StreamID != "" {
		req.extField |= extFlagCONFIG
		req.streamID = cfg.StreamID
	}
	return req
}
