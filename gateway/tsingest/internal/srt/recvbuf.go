package srt

import "time"

// ringSize is the reorder window in packets: sequence numbers from next to next+ringSize-1
// can be held. 2^31 is a multiple of it, so seq&ringMask indexes the ring across the wrap.
const (
	ringSize = 8192
	ringMask = ringSize - 1
)

type slotState uint8

const (
	slotEmpty   slotState = iota // beyond the highest sequence number seen
	slotPresent                  // received, waiting for an earlier gap to close
	slotMissing                  // a gap: NAKed, waiting for the retransmission or for latency
	slotDropped                  // the sender said it will not send it (DROPREQ)
)

type slot struct {
	state  slotState
	seq    uint32
	data   []byte
	lostAt time.Time // when the gap was detected
	nakAt  time.Time // when it was last reported in a NAK
}

// recvBuffer reorders data packets and tracks the gaps. It is not safe for concurrent use
// (Conn guards it with its mutex). Every sequence number in [next, max] has a slot that is
// present, missing or dropped; all other slots are empty.
type recvBuffer struct {
	slots   [ringSize]slot
	started bool   // a data packet has been seen
	next    uint32 // next sequence number to deliver; everything before it is done with
	max     uint32 // highest sequence number seen (next-1 when none is held)
	missing int    // slots in the missing state
	latency time.Duration
	emit    func([]byte) // receives payloads in sequence order

	lost uint64 // packets given up (too late, dropped by the sender, or skipped)
}

func newRecvBuffer(isn uint32, latency time.Duration, emit func([]byte)) *recvBuffer {
	return &recvBuffer{next: isn & seqMask, max: seqAdd(isn, -1), latency: latency, emit: emit}
}

// insert stores a data packet. It returns the gaps that this packet reveals (to be NAKed at
// once) and whether it was a duplicate (or too late to matter). Contiguous data is emitted.
func (b *recvBuffer) insert(seq uint32, data []byte, now time.Time) (gaps []seqRange, dup bool) {
	seq &= seqMask
	if !b.started {
		b.started = true
		// The first data packet should be the ISN agreed in the handshake, or a little
		// after it if the first ones were lost or reordered. If it is nowhere near, follow
		// the sender rather than wait for packets that will never come.
		if d := seqDiff(seq, b.next); d < 0 || d >= ringSize {
			b.next = seq
			b.max = seqAdd(seq, -1)
		}
	}
	d := seqDiff(seq, b.next)
	if d < 0 {
		return nil, true
	}
	if d >= ringSize {
		// Far ahead of the window: give up on the oldest packets so that seq fits.
		b.skipTo(seqAdd(seq, -(ringSize - 1)))
	}
	s := &b.slots[seq&ringMask]
	if seqDiff(seq, b.max) <= 0 {
		if s.state != slotMissing || s.seq != seq {
			return nil, true // already here, or dropped at the sender's request
		}
		*s = slot{state: slotPresent, seq: seq, data: data}
		b.missing--
		b.deliver()
		return nil, false
	}
	if seqDiff(seq, b.max) > 1 {
		r := seqRange{seqAdd(b.max, 1), seqAdd(seq, -1)}
		gaps = append(gaps, r)
		for m := r.from; m != seq; m = seqAdd(m, 1) {
			b.slots[m&ringMask] = slot{state: slotMissing, seq: m, lostAt: now, nakAt: now}
			b.missing++
		}
	}
	*s = slot{state: slotPresent, seq: seq, data: data}
	b.max = seq
	b.deliver()
	return gaps, false
}

// deliver emits the contiguous packets at the head of the window.
func (b *recvBuffer) deliver() {
	for seqDiff(b.next, b.max) <= 0 {
		s := &b.slots[b.next&ringMask]
		if s.state == slotMissing {
			return
		}
		if s.state == slotPresent {
			b.emit(s.data)
		}
		*s = slot{}
		b.next = seqAdd(b.next, 1)
	}
}

// skipTo moves the head of the window to seq: held packets are emitted, everything else
// before seq counts as lost.
func (b *recvBuffer) skipTo(seq uint32) {
	for seqDiff(seq, b.next) > 0 {
		if seqDiff(b.next, b.max) > 0 {
			// Nothing is held beyond max: jump.
			b.lost += uint64(seqDiff(seq, b.next))
			b.next = seq
			b.max = seqAdd(seq, -1)
			return
		}
		s := &b.slots[b.next&ringMask]
		switch s.state {
		case slotPresent:
			b.emit(s.data)
		case slotMissing:
			b.lost++
			b.missing--
		}
		*s = slot{}
		b.next = seqAdd(b.next, 1)
	}
	b.deliver()
}

// expire gives up on missing packets at the head of the window that have waited latency
// since their loss was detected (too-late packet drop), then emits what follows them. It
// returns how many packets it gave up.
func (b *recvBuffer) expire(now time.Time) int {
	n := 0
	for b.missing > 0 && seqDiff(b.next, b.max) <= 0 {
		s := &b.slots[b.next&ringMask]
		if s.state != slotMissing || now.Sub(s.lostAt) < b.latency {
			break
		}
		*s = slot{}
		b.missing--
		b.lost++
		n++
		b.next = seqAdd(b.next, 1)
		b.deliver()
	}
	return n
}

// dueLosses returns the missing packets not reported for at least interval, as ranges fitting
// in maxWords loss-list words, and marks them reported at now.
func (b *recvBuffer) dueLosses(now time.Time, interval time.Duration, maxWords int) []seqRange {
	if b.missing == 0 {
		return nil
	}
	var out []seqRange
	words := 0
	for seq := b.next; seqDiff(seq, b.max) <= 0; seq = seqAdd(seq, 1) {
		s := &b.slots[seq&ringMask]
		if s.state != slotMissing || now.Sub(s.nakAt) < interval {
			continue
		}
		if n := len(out); n > 0 && seqAdd(out[n-1].to, 1) == seq {
			if out[n-1].from == out[n-1].to {
				if words+1 > maxWords {
					break
				}
				words++ // a single becomes a range: one more word
			}
			out[n-1].to = seq
		} else {
			if words+1 > maxWords {
				break
			}
			out = append(out, seqRange{seq, seq})
			words++
		}
		s.nakAt = now
	}
	return out
}

// dropRange handles a DROPREQ: the sender will not send [r.from, r.to] (again). Missing
// packets in it are given up at once; packets already here are kept.
func (b *recvBuffer) dropRange(r seqRange, now time.Time) {
	b.started = true // the sender has begun: no resynchronising on the first data packet
	if seqDiff(r.to, b.next) < 0 {
		return
	}
	from := r.from
	if seqDiff(from, b.next) < 0 {
		from = b.next
	}
	if seqDiff(r.to, b.next) >= ringSize {
		b.skipTo(seqAdd(r.to, -(ringSize - 1)))
		if seqDiff(from, b.next) < 0 {
			from = b.next
		}
	}
	// Packets between the highest seen and the dropped range are ordinary gaps.
	for seqDiff(from, seqAdd(b.max, 1)) > 0 {
		m := seqAdd(b.max, 1)
		b.slots[m&ringMask] = slot{state: slotMissing, seq: m, lostAt: now, nakAt: now}
		b.missing++
		b.max = m
	}
	for seq := from; seqDiff(seq, r.to) <= 0; seq = seqAdd(seq, 1) {
		s := &b.slots[seq&ringMask]
		switch {
		case seqDiff(seq, b.max) > 0:
			*s = slot{state: slotDropped, seq: seq}
			b.max = seq
			b.lost++
		case s.state == slotMissing:
			*s = slot{state: slotDropped, seq: seq}
			b.missing--
			b.lost++
		}
	}
	b.deliver()
}

// flush emits everything held, giving up on the gaps: the connection has ended.
func (b *recvBuffer) flush() {
	if b.started {
		b.skipTo(seqAdd(b.max, 1))
	}
}

// free is the room left in the window, announced in ACKs as the available buffer.
func (b *recvBuffer) free() int {
	return ringSize - int(seqDiff(b.max, b.next)+1)
}
