package srt

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"
)

// This file is the receiver's side of SRT's ARQ: packet handling, ACK/ACKACK, NAK reports,
// too-late drop, keepalive and the idle timeout.

// handlePacket processes one packet from the peer. p.body may alias a reused buffer.
func (c *Conn) handlePacket(p packet, now time.Time) {
	var out []packet
	var endErr error
	c.mu.Lock()
	if c.endErr != nil {
		c.mu.Unlock()
		return
	}
	c.lastRecv = now
	if !p.control {
		out, endErr = c.onData(p, now)
	} else {
		switch p.ctrl {
		case ctrlShutdown:
			endErr = io.EOF
		case ctrlACKACK:
			c.onACKACK(p.info, now)
		case ctrlDropReq:
			if r, err := parseDropReq(p.body); err == nil {
				c.rcv.dropRange(r, now)
			}
		}
		// KEEPALIVE only refreshes lastRecv. ACK and NAK are for a sender, which we are
		// not; repeated handshakes, PEERERROR, user-defined and unknown types are ignored.
	}
	if len(out) > 0 {
		c.lastSend = now
	}
	c.mu.Unlock()
	for _, o := range out {
		c.write(o, now)
	}
	if endErr != nil {
		c.end(endErr, false)
	}
}

// onData stores a data packet and returns the NAK to send at once if it reveals a gap.
func (c *Conn) onData(p packet, now time.Time) ([]packet, error) {
	if p.keyFlags != 0 {
		return nil, fmt.Errorf("srt: %s sends encrypted data: %w", c.peer, ErrEncryptionUnsupported)
	}
	if p.retransmitted {
		c.stats.Retransmitted++
	}
	data := bytes.Clone(p.body)
	gaps, dup := c.rcv.insert(p.seq, data, now)
	if dup {
		c.stats.Duplicates++
		return nil, nil
	}
	c.stats.Packets++
	c.stats.Bytes += uint64(len(data))
	if !p.retransmitted {
		c.link.onPacket(p.seq, now)
	}
	c.ratePkts++
	c.rateBytes += uint64(len(data))
	c.newData = true
	if len(gaps) == 0 {
		return nil, nil
	}
	return []packet{c.nakPacket(gaps)}, nil
}

func (c *Conn) nakPacket(losses []seqRange) packet {
	cif, _ := appendLossList(nil, losses, maxLossWords)
	c.stats.NAKsSent++
	return controlPacket(ctrlNAK, 0, cif)
}

// onACKACK turns the ACK/ACKACK round trip into an RTT sample (draft: RTT = 7/8 RTT + 1/8
// rtt, RTTVar = 3/4 RTTVar + 1/4 |RTT - rtt|).
func (c *Conn) onACKACK(no uint32, now time.Time) {
	h := c.ackHist[no%uint32(len(c.ackHist))]
	if h.no != no || h.at.IsZero() {
		return
	}
	sample := now.Sub(h.at)
	if !c.rttSampled {
		c.rtt, c.rttVar, c.rttSampled = sample, sample/2, true
		return
	}
	c.rttVar = (3*c.rttVar + (c.rtt - sample).Abs()) / 4
	c.rtt = (7*c.rtt + sample) / 8
}

// nakInterval is the periodic NAK report period: (RTT + 4 RTTVar) / 2, at least 20 ms.
func (c *Conn) nakInterval() time.Duration {
	return max((c.rtt+4*c.rttVar)/2, minNAKInterval)
}

// tick runs every tickInterval.
func (c *Conn) tick(now time.Time) {
	c.mu.Lock()
	if c.endErr != nil {
		c.mu.Unlock()
		return
	}
	if silent := now.Sub(c.lastRecv); silent >= c.idleTimeout {
		c.mu.Unlock()
		c.end(&idleError{peer: c.peer, after: c.idleTimeout}, false)
		return
	}
	c.rcv.expire(now)
	var out []packet
	if c.rcv.started && (c.newData || c.rcv.next != c.lastAckSeq) {
		out = append(out, c.ackPacket(now))
	}
	if losses := c.rcv.dueLosses(now, c.nakInterval(), maxLossWords); len(losses) > 0 {
		out = append(out, c.nakPacket(losses))
	}
	if len(out) == 0 && now.Sub(c.lastSend) >= keepaliveInterval {
		out = append(out, controlPacket(ctrlKeepalive, 0, padding))
	}
	if len(out) > 0 {
		c.lastSend = now
	}
	c.mu.Unlock()
	for _, o := range out {
		c.write(o, now)
	}
}

// ackPacket builds a full ACK and remembers when it left, for the ACKACK.
func (c *Conn) ackPacket(now time.Time) packet {
	c.ackNo++
	if c.ackNo == 0 {
		c.ackNo = 1
	}
	h := &c.ackHist[c.ackNo%uint32(len(c.ackHist))]
	h.no, h.at = c.ackNo, now
	if el := now.Sub(c.rateStart); el >= time.Second {
		c.pktRate = uint32(float64(c.ratePkts) / el.Seconds())
		c.byteRate = uint32(float64(c.rateBytes) / el.Seconds())
		c.ratePkts, c.rateBytes, c.rateStart = 0, 0, now
	}
	info := ackInfo{
		lastAck:  c.rcv.next,
		rtt:      uint32(c.rtt / time.Microsecond),
		rttVar:   uint32(c.rttVar / time.Microsecond),
		availBuf: uint32(max(c.rcv.free(), 2)),
		pktRate:  c.pktRate,
		linkCap:  c.link.capacity(),
		byteRate: c.byteRate,
	}
	c.lastAckSeq = c.rcv.next
	c.newData = false
	c.stats.ACKsSent++
	return controlPacket(ctrlACK, c.ackNo, info.appendTo(nil))
}

// linkEstimator measures the link capacity that ACKs report, from packet pairs: a libsrt
// sender sends the packet whose sequence number is a multiple of 16 and the next one back
// to back, so the gap between their arrivals shows the bottleneck's rate.
type linkEstimator struct {
	probeSeq  uint32
	probeAt   time.Time
	haveProbe bool
	gaps      [16]time.Duration
	n, next   int
}

func (e *linkEstimator) onPacket(seq uint32, now time.Time) {
	switch seq & 0xF {
	case 0:
		e.probeSeq, e.probeAt, e.haveProbe = seq, now, true
		return
	case 1:
		if e.haveProbe && seqAdd(e.probeSeq, 1) == seq {
			e.gaps[e.next] = now.Sub(e.probeAt)
			e.next = (e.next + 1) % len(e.gaps)
			e.n = min(e.n+1, len(e.gaps))
		}
	}
	e.haveProbe = false
}

// capacity returns packets per second: the median of the recent pair gaps, inverted. Before
// any measurement it is 1000, as libsrt reports.
func (e *linkEstimator) capacity() uint32 {
	if e.n == 0 {
		return 1000
	}
	g := slices.Clone(e.gaps[:e.n])
	slices.Sort(g)
	return uint32(time.Second / max(g[len(g)/2], time.Microsecond))
}
