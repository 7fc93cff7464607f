package demosource

import (
	"fmt"
	"time"
)

// A seamless loop. The clip's segments are one encoder run: within the clip, timestamps
// rise and each PID's continuity counter counts on. Played again as they are, every loop
// would go back 8 s and restart the counters, which players see as a discontinuity (VLC
// resets its clock, ffmpeg reports corrupt packets and non-monotonic timestamps). So loop
// k's copy of a segment is rewritten: its PTS, DTS and PCR move k clip lengths on (mod
// 2^33, as an encoder's clock wraps after 26.5 h), and each packet's continuity counter
// is the number of packets of its PID before it in the endless stream, mod 16. The clip is
// made (clip/make.sh) so that its audio and video both span exactly its length.

const (
	pcrHz     = 90000 // the PCR base, PTS and DTS tick at 90 kHz
	clockMask = 1<<33 - 1
)

// loop is the clip prepared for looping.
type loop struct {
	segs   [][]byte
	before []map[uint16]uint64 // per segment: payload packets of each PID in the clip before it
	per    map[uint16]uint64   // payload packets of each PID in the whole clip
	period uint64              // the clip's length in 90 kHz ticks
}

func newLoop(segs [][]byte, segDur time.Duration) (*loop, error) {
	l := &loop{segs: segs, per: map[uint16]uint64{},
		period: uint64(len(segs)) * uint64(segDur/time.Millisecond) * pcrHz / 1000}
	for i, s := range segs {
		if len(s)%tsPacket != 0 {
			return nil, fmt.Errorf("demosource: clip segment %d: %d bytes, not whole TS packets", i, len(s))
		}
		before := map[uint16]uint64{}
		for pid, n := range l.per {
			before[pid] = n
		}
		l.before = append(l.before, before)
		for p := 0; p < len(s); p += tsPacket {
			if s[p] != 0x47 {
				return nil, fmt.Errorf("demosource: clip segment %d: no sync byte at %d", i, p)
			}
			if hasPayload(s[p:]) {
				l.per[pid(s[p:])]++
			}
		}
	}
	return l, nil
}

// segment returns the clip segment that seq plays, rewritten for its loop.
func (l *loop) segment(seq uint64) []byte {
	n := uint64(len(l.segs))
	k, src := seq/n, l.segs[seq%n]
	b := make([]byte, len(src), len(src)+tsPacket)
	copy(b, src)
	offset := k * l.period & clockMask
	count := map[uint16]uint64{}
	for pkt := 0; pkt < len(b); pkt += tsPacket {
		p := b[pkt : pkt+tsPacket]
		id := pid(p)
		if id == nullPID {
			continue
		}
		if hasPayload(p) {
			cc := l.before[seq%n][id] + k*l.per[id] + count[id]
			count[id]++
			p[3] = p[3]&0xF0 | byte(cc&0x0F)
		}
		payload := 4
		if p[3]&0x20 != 0 { // adaptation field
			afLen := int(p[4])
			if afLen >= 7 && p[5]&0x10 != 0 { // PCR
				addPCR(p[6:12], offset)
			}
			payload = 5 + afLen
		}
		if p[1]&0x40 == 0 || id == 0 || payload+14 > tsPacket {
			continue
		}
		pes := p[payload:]
		if pes[0] != 0 || pes[1] != 0 || pes[2] != 1 {
			continue // a PSI section, not a PES header
		}
		flags := pes[7] >> 6
		if flags&0x2 != 0 {
			addTimestamp(pes[9:14], offset)
		}
		if flags == 0x3 && payload+19 <= tsPacket {
			addTimestamp(pes[14:19], offset)
		}
	}
	return b
}

const nullPID = 0x1FFF

func pid(p []byte) uint16      { return uint16(p[1]&0x1F)<<8 | uint16(p[2]) }
func hasPayload(p []byte) bool { return p[3]&0x10 != 0 }

// addTimestamp adds d to a PES header's 33-bit PTS or DTS (5 bytes: 4-bit prefix, then the
// value in 3, 15 and 15 bits, each followed by a marker bit), mod 2^33.
func addTimestamp(b []byte, d uint64) {
	v := uint64(b[0]>>1&0x07)<<30 | uint64(b[1])<<22 | uint64(b[2]>>1)<<15 | uint64(b[3])<<7 | uint64(b[4]>>1)
	v = (v + d) & clockMask
	b[0] = b[0]&0xF1 | byte(v>>29)&0x0E
	b[1] = byte(v >> 22)
	b[2] = byte(v>>14)&0xFE | 1
	b[3] = byte(v >> 7)
	b[4] = byte(v<<1)&0xFE | 1
}

// addPCR adds d to an adaptation field's PCR base (33 bits, then 6 reserved bits and the
// 9-bit extension), mod 2^33.
func addPCR(b []byte, d uint64) {
	base := uint64(b[0])<<25 | uint64(b[1])<<17 | uint64(b[2])<<9 | uint64(b[3])<<1 | uint64(b[4]>>7)
	base = (base + d) & clockMask
	b[0], b[1], b[2], b[3] = byte(base>>25), byte(base>>17), byte(base>>9), byte(base>>1)
	b[4] = b[4]&0x7F | byte(base<<7)
}
