package srt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire sizes.
const (
	maxPacketSize = 1500 // largest datagram accepted; anything larger is dropped
	headerSize    = 16   // SRT header common to data and control packets

	// maxLossWords bounds a NAK's loss list so the packet fits a 1500-byte IPv4 MTU:
	// 1500 - 20 (IP) - 8 (UDP) - 16 (SRT header) = 1456 bytes = 364 words.
	maxLossWords = 364
)

// seqMask keeps the 31 bits of a packet sequence number.
const seqMask = 0x7FFFFFFF

// ctrlType is the 15-bit Control Type of a control packet.
type ctrlType uint16

const (
	ctrlHandshake  ctrlType = 0x0000
	ctrlKeepalive  ctrlType = 0x0001
	ctrlACK        ctrlType = 0x0002
	ctrlNAK        ctrlType = 0x0003
	ctrlCongestion ctrlType = 0x0004
	ctrlShutdown   ctrlType = 0x0005
	ctrlACKACK     ctrlType = 0x0006
	ctrlDropReq    ctrlType = 0x0007
	ctrlPeerError  ctrlType = 0x0008
	ctrlUser       ctrlType = 0x7FFF
)

var errShortPacket = errors.New("srt: packet shorter than the 16-byte header")

// packet is one SRT datagram, data or control. body aliases the buffer it was parsed from.
type packet struct {
	control bool

	// Data packets.
	seq           uint32 // 31-bit packet sequence number
	position      uint8  // PP: 2 bits, position of the packet in its message
	inOrder       bool   // O
	keyFlags      uint8  // KK: 0 means not encrypted
	retransmitted bool   // R
	msgNo         uint32 // 26-bit message number

	// Control packets.
	ctrl    ctrlType
	subtype uint16
	info    uint32 // Type-specific Information

	timestamp uint32 // microseconds since the sender's connection start, wrapping
	dest      uint32 // Destination Socket ID
	body      []byte // data payload, or the control packet's Control Information Field
}

// parsePacket decodes the SRT header of b. It never panics; the body is not validated here
// (see parseHandshake, parseDropReq).
func parsePacket(b []byte) (packet, error) {
	if len(b) < headerSize {
		return packet{}, errShortPacket
	}
	if len(b) > maxPacketSize {
		return packet{}, fmt.Errorf("srt: %d-byte datagram exceeds %d bytes", len(b), maxPacketSize)
	}
	w0 := binary.BigEndian.Uint32(b[0:])
	w1 := binary.BigEndian.Uint32(b[4:])
	p := packet{
		timestamp: binary.BigEndian.Uint32(b[8:]),
		dest:      binary.BigEndian.Uint32(b[12:]),
		body:      b[headerSize:],
	}
	if w0&0x80000000 != 0 {
		p.control = true
		p.ctrl = ctrlType(w0 >> 16 & 0x7FFF)
		p.subtype = uint16(w0)
		p.info = w1
		return p, nil
	}
	p.seq = w0
	p.position = uint8(w1 >> 30)
	p.inOrder = w1>>29&1 == 1
	p.keyFlags = uint8(w1 >> 27 & 3)
	p.retransmitted = w1>>26&1 == 1
	p.msgNo = w1 & 0x03FFFFFF
	return p, nil
}

// appendTo appends the wire form of p to dst.
func (p *packet) appendTo(dst []byte) []byte {
	var w0, w1 uint32
	if p.control {
		w0 = 0x80000000 | uint32(p.ctrl&0x7FFF)<<16 | uint32(p.subtype)
		w1 = p.info
	} else {
		w0 = p.seq & seqMask
		w1 = uint32(p.position&3)<<30 | uint32(p.keyFlags&3)<<27 | p.msgNo&0x03FFFFFF
		if p.inOrder {
			w1 |= 1 << 29
		}
		if p.retransmitted {
			w1 |= 1 << 26
		}
	}
	dst = binary.BigEndian.AppendUint32(dst, w0)
	dst = binary.BigEndian.AppendUint32(dst, w1)
	dst = binary.BigEndian.AppendUint32(dst, p.timestamp)
	dst = binary.BigEndian.AppendUint32(dst, p.dest)
	return append(dst, p.body...)
}

// seqAdd returns s+n in 31-bit sequence space (n may be negative).
func seqAdd(s uint32, n int) uint32 {
	return uint32(int64(s)+int64(n)) & seqMask
}

// seqDiff returns a-b in 31-bit sequence space as a signed distance, so that the answer is
// right across the wrap from 0x7FFFFFFF to 0 as long as |a-b| < 2^30.
func seqDiff(a, b uint32) int32 {
	return int32((a-b)<<1) >> 1
}

// seqRange is an inclusive range of sequence numbers, as in a NAK loss list.
type seqRange struct{ from, to uint32 }

// appendLossList encodes ranges as a NAK loss list: a single lost packet is one word with
// the top bit clear; a range is its first number with the top bit set, then its last one.
// It stops before exceeding maxWords words and returns how many ranges it encoded.
func appendLossList(dst []byte, ranges []seqRange, maxWords int) ([]byte, int) {
	words := 0
	for i, r := range ranges {
		if r.from == r.to {
			if words+1 > maxWords {
				return dst, i
			}
			dst = binary.BigEndian.AppendUint32(dst, r.from&seqMask)
			words++
			continue
		}
		if words+2 > maxWords {
			return dst, i
		}
		dst = binary.BigEndian.AppendUint32(dst, r.from&seqMask|0x80000000)
		dst = binary.BigEndian.AppendUint32(dst, r.to&seqMask)
		words += 2
	}
	return dst, len(ranges)
}

// ackInfo is the Control Information Field of a full ACK.
type ackInfo struct {
	lastAck  uint32 // first sequence number not yet received (all before it are acknowledged)
	rtt      uint32 // microseconds
	rttVar   uint32 // microseconds
	availBuf uint32 // packets
	pktRate  uint32 // packets per second
	linkCap  uint32 // packets per second
	byteRate uint32 // bytes per second
}

func (a ackInfo) appendTo(dst []byte) []byte {
	for _, v := range [...]uint32{a.lastAck & seqMask, a.rtt, a.rttVar, a.availBuf, a.pktRate, a.linkCap, a.byteRate} {
		dst = binary.BigEndian.AppendUint32(dst, v)
	}
	return dst
}

// parseDropReq decodes a DROPREQ's Control Information Field: the first and last sequence
// numbers the sender will no longer (re)transmit.
func parseDropReq(cif []byte) (seqRange, error) {
	if len(cif) < 8 {
		return seqRange{}, errors.New("srt: DROPREQ shorter than 8 bytes")
	}
	r := seqRange{binary.BigEndian.Uint32(cif) & seqMask, binary.BigEndian.Uint32(cif[4:]) & seqMask}
	if seqDiff(r.to, r.from) < 0 {
		return seqRange{}, fmt.Errorf("srt: DROPREQ range %d-%d goes backwards", r.from, r.to)
	}
	return r, nil
}
