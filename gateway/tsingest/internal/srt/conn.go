package srt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Config for Dial and Listen. Zero values mean defaults.
type Config struct {
	StreamID         string        // sent in the SID handshake extension when non-empty (caller)
	Latency          time.Duration // TSBPD latency we announce and use as the reorder/loss wait; default 120ms
	HandshakeTimeout time.Duration // default 5s
	PeerIdleTimeout  time.Duration // no packet at all from the peer for this long ends the connection; default 5s
	MaxConns         int           // listener: connections at once, accepted or waiting (more are rejected); default 64
}

const (
	defaultLatency          = 120 * time.Millisecond
	defaultHandshakeTimeout = 5 * time.Second
	defaultPeerIdleTimeout  = 5 * time.Second

	tickInterval      = 10 * time.Millisecond // the SRT "SYN" interval: full ACKs at most this often
	keepaliveInterval = time.Second           // KEEPALIVE after this long without sending anything
	minNAKInterval    = 20 * time.Millisecond // floor of the periodic NAK report period
	maxUnreadBytes    = 8 << 20               // delivered but not yet Read; beyond it the oldest is dropped
)

func (c Config) withDefaults() Config {
	if c.Latency <= 0 {
		c.Latency = defaultLatency
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = defaultHandshakeTimeout
	}
	if c.PeerIdleTimeout <= 0 {
		c.PeerIdleTimeout = defaultPeerIdleTimeout
	}
	return c
}

// Stats are a connection's counters since it was established.
type Stats struct {
	Packets        uint64        // distinct data packets received
	Bytes          uint64        // payload bytes of those packets
	Lost           uint64        // packets never delivered: still missing after Latency, dropped by the sender (DROPREQ), or dropped because the reader fell behind
	ReaderOverflow uint64        // the part of Lost dropped because more than 8 MiB waited to be Read
	Retransmitted  uint64        // data packets received with the R (retransmitted) flag
	Duplicates     uint64        // data packets received again, or too late to be used
	NAKsSent       uint64        // loss reports sent
	ACKsSent       uint64        // full ACKs sent
	RTT            time.Duration // smoothed round-trip time from ACK/ACKACK pairs (100ms until measured)
}

// errConnClosed is what Read returns after Close.
var errConnClosed = fmt.Errorf("srt: use of closed connection: %w", net.ErrClosed)

// padding is the 4-byte CIF libsrt puts in control packets that carry none (KEEPALIVE,
// SHUTDOWN); receivers ignore it.
var padding = []byte{0, 0, 0, 0}

// idleError ends a connection whose peer went silent. It is a net.Error with Timeout() true
// and matches os.ErrDeadlineExceeded with errors.Is.
type idleError struct {
	peer  netip.AddrPort
	after time.Duration
}

func (e *idleError) Error() string {
	return fmt.Sprintf("srt: connection timed out: nothing received from %s for %v", e.peer, e.after)
}
func (e *idleError) Timeout() bool   { return true }
func (e *idleError) Temporary() bool { return false }
func (e *idleError) Unwrap() error   { return os.ErrDeadlineExceeded }

// Conn delivers the sender's payload bytes in sequence order as a byte stream. Read, Close,
// StreamID and Stats are safe for concurrent use.
type Conn struct {
	// Fixed at creation.
	sock        *net.UDPConn
	peer        netip.AddrPort
	localID     uint32
	peerID      uint32
	streamID    string
	latency     time.Duration
	idleTimeout time.Duration
	start       time.Time
	ownsSock    bool   // Dial: the socket is ours to read and close; Listen: the listener's
	detach      func() // Listen: stop routing packets here; nil for Dial

	notify  chan struct{} // capacity 1: data arrived or the connection ended
	done    chan struct{} // closed when the connection ends: goroutines exit
	endOnce sync.Once
	wg      sync.WaitGroup

	mu          sync.Mutex
	rcv         *recvBuffer
	unread      [][]byte // delivered payloads waiting for Read; unread[0][headOff:] is next
	headOff     int
	unreadBytes int
	endErr      error // why the connection ended; Read returns it once unread is drained
	userClosed  bool
	stats       Stats
	lastRecv    time.Time
	lastSend    time.Time
	newData     bool   // data arrived since the last ACK
	lastAckSeq  uint32 // sequence number in the last ACK sent
	ackNo       uint32
	ackHist     [32]struct {
		no uint32
		at time.Time
	}
	link                linkEstimator
	rtt, rttVar         time.Duration
	rttSampled          bool
	rateStart           time.Time
	ratePkts, rateBytes uint64
	pktRate, byteRate   uint32
}

type connParams struct {
	sock        *net.UDPConn
	peer        netip.AddrPort
	localID     uint32
	peerID      uint32
	isn         uint32 // first sequence number the peer sends
	latency     time.Duration
	idleTimeout time.Duration
	streamID    string
	ownsSock    bool
	detach      func()
}

func newConn(p connParams) *Conn {
	now := time.Now()
	c := &Conn{
		sock: p.sock, peer: p.peer, localID: p.localID, peerID: p.peerID, streamID: p.streamID,
		latency: p.latency, idleTimeout: p.idleTimeout, start: now, ownsSock: p.ownsSock, detach: p.detach,
		notify: make(chan struct{}, 1), done: make(chan struct{}),
		lastRecv: now, lastSend: now, lastAckSeq: p.isn, rateStart: now,
		rtt: 100 * time.Millisecond, rttVar: 50 * time.Millisecond, // initial values per the draft
	}
	c.rcv = newRecvBuffer(p.isn, p.latency, c.enqueue)
	return c
}

// run starts the connection's goroutines: the timer, and for Dial the socket reader.
func (c *Conn) run() {
	c.wg.Add(1)
	go c.timerLoop()
	if c.ownsSock {
		c.wg.Add(1)
		go c.readLoop()
	}
}

// StreamID returns the stream id: what the caller sent in the handshake (empty if none).
func (c *Conn) StreamID() string { return c.streamID }

// RemoteAddr returns the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(c.peer) }

// Stats returns a snapshot of the connection's counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Lost = c.rcv.lost + s.ReaderOverflow
	s.RTT = c.rtt
	return s
}

// Read reads payload bytes in sequence order. It blocks until data is available, returns
// io.EOF after the peer's SHUTDOWN once everything received before it was read, a timeout
// error (net.Error, os.ErrDeadlineExceeded) after PeerIdleTimeout of silence, and an error
// wrapping net.ErrClosed after Close. A payload larger than p is returned over several Reads.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		c.mu.Lock()
		if c.userClosed {
			c.mu.Unlock()
			return 0, errConnClosed
		}
		if c.unreadBytes > 0 {
			n := c.copyOut(p)
			c.mu.Unlock()
			return n, nil
		}
		if err := c.endErr; err != nil {
			c.mu.Unlock()
			return 0, err
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.done:
		}
	}
}

// copyOut moves unread bytes into p. c.mu must be held.
func (c *Conn) copyOut(p []byte) int {
	n := 0
	for n < len(p) && len(c.unread) > 0 {
		k := copy(p[n:], c.unread[0][c.headOff:])
		n += k
		c.headOff += k
		c.unreadBytes -= k
		if c.headOff == len(c.unread[0]) {
			c.unread[0] = nil
			c.unread = c.unread[1:]
			c.headOff = 0
		}
	}
	return n
}

// enqueue receives payloads from the reorder buffer, in order. c.mu must be held.
func (c *Conn) enqueue(data []byte) {
	if c.userClosed || len(data) == 0 {
		return
	}
	c.unread = append(c.unread, data)
	c.unreadBytes += len(data)
	// Live data only loses value while it waits: past the bound, drop the oldest rather
	// than grow or stall the sender.
	for c.unreadBytes > maxUnreadBytes && len(c.unread) > 1 {
		c.unreadBytes -= len(c.unread[0]) - c.headOff
		c.unread[0] = nil
		c.unread = c.unread[1:]
		c.headOff = 0
		c.stats.ReaderOverflow++
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Close sends SHUTDOWN to the peer (best effort), stops the connection's goroutines and
// discards unread data. It is idempotent and always returns nil.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.userClosed = true
	c.unread, c.headOff, c.unreadBytes = nil, 0, 0
	c.mu.Unlock()
	c.end(errConnClosed, true)
	c.wg.Wait()
	return nil
}

// end finishes the connection once: it records why, hands over what the reorder buffer
// still holds (gaps count as lost), optionally tells the peer, and stops the goroutines.
// It must not be called with c.mu held.
func (c *Conn) end(why error, sendShutdown bool) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.endErr = why
		c.rcv.flush()
		c.mu.Unlock()
		if sendShutdown {
			c.write(controlPacket(ctrlShutdown, 0, padding), time.Now())
		}
		close(c.done)
		if c.ownsSock {
			c.sock.Close()
		}
		if c.detach != nil {
			c.detach()
		}
	})
}

// write sends one packet to the peer. UDP is lossy anyway, so errors are not reported:
// a peer that is really gone shows up as the idle timeout.
func (c *Conn) write(p packet, now time.Time) {
	p.timestamp = uint32(now.Sub(c.start) / time.Microsecond)
	p.dest = c.peerID
	_, _ = c.sock.WriteToUDPAddrPort(p.appendTo(make([]byte, 0, headerSize+len(p.body))), c.peer)
}

// readLoop reads the Dial socket until it is closed.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	buf := make([]byte, maxPacketSize+1) // one spare byte detects oversized datagrams
	for {
		n, from, err := c.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select { // transient error: do not spin on it
			case <-c.done:
				return
			case <-time.After(tickInterval):
			}
			continue
		}
		if n > maxPacketSize || unmap(from) != c.peer {
			continue
		}
		p, err := parsePacket(buf[:n])
		if err != nil || p.dest != c.localID {
			continue
		}
		c.handlePacket(p, time.Now())
	}
}

// timerLoop drives ACKs, periodic NAKs, too-late drops, keepalives and the idle timeout.
func (c *Conn) timerLoop() {
	defer c.wg.Done()
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.tick(time.Now()) // not the tick's own time, which is stale if we were late
		}
	}
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
