package tsingest

import "math/bits"

// PacketSize is the size of an MPEG-TS packet. 192- and 204-byte variants (M2TS time
// codes, Reed-Solomon parity) are not accepted: they are found on disks and ASI links, not
// on the HTTP, UDP and SRT streams this package ingests.
const PacketSize = 188

const (
	syncByte = 0x47
	patPID   = 0x0000

	// ptsWrap is where the 33-bit PTS of ISO/IEC 13818-1 wraps (about 26.5 hours).
	ptsWrap = int64(1) << 33
	// ticksPerSecond is the PTS clock rate.
	ticksPerSecond = 90000
)

// pid returns a packet's PID.
func pid(p []byte) uint16 { return uint16(p[1]&0x1F)<<8 | uint16(p[2]) }

// unitStart reports the payload_unit_start_indicator: a PES packet or PSI section starts in
// this packet.
func unitStart(p []byte) bool { return p[1]&0x40 != 0 }

// transportError reports the transport_error_indicator: the packet is known to be damaged.
func transportError(p []byte) bool { return p[1]&0x80 != 0 }

// setCC sets a packet's continuity counter.
func setCC(p []byte, cc int) { p[3] = p[3]&0xF0 | byte(cc&0x0F) }

// payload returns the packet's payload, or nil when it has none or its adaptation field
// claims more than the packet holds.
func payload(p []byte) []byte {
	switch p[3] >> 4 & 0x3 {
	case 1:
		return p[4:]
	case 3:
		start := 5 + int(p[4])
		if start >= PacketSize {
			return nil
		}
		return p[start:]
	}
	return nil
}

// pesHeader reads the start of a PES packet: its PTS, if it has one, and where its payload
// begins. ok is false when b does not start a PES packet with a complete header.
func pesHeader(b []byte) (pts int64, hasPTS bool, body []byte, ok bool) {
	if len(b) < 9 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return 0, false, nil, false
	}
	switch b[3] { // stream_ids without the optional header (H.222 table 2-21)
	case 0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF:
		return 0, false, b[6:], true
	}
	end := 9 + int(b[8])
	if end > len(b) {
		return 0, false, nil, false
	}
	if b[7]&0x80 != 0 && end >= 14 {
		pts = int64(b[9]>>1&0x07)<<30 | int64(b[10])<<22 | int64(b[11]>>1)<<15 |
			int64(b[12])<<7 | int64(b[13]>>1)
		hasPTS = true
	}
	return pts, hasPTS, b[end:], true
}

// ptsDiff returns b-a for two 33-bit timestamps, taking the shorter way around the wrap:
// the result is in [-2^32, 2^32).
func ptsDiff(a, b int64) int64 {
	d := (b - a) & (ptsWrap - 1)
	if d >= ptsWrap/2 {
		d -= ptsWrap
	}
	return d
}

// codec is what the segmenter needs to know of the stream it cuts on.
type codec int

const (
	codecNone codec = iota
	codecH264
	codecH265
	codecAudio // every PES packet starts on a frame boundary: cut anywhere (on duration)
)

func (c codec) String() string {
	switch c {
	case codecH264:
		return "h264"
	case codecH265:
		return "h265"
	case codecAudio:
		return "audio"
	}
	return "none"
}

// firstPicture scans an Annex B elementary stream for its first VCL NAL unit (a coded
// slice) and reports whether it starts a random access point: an IDR picture in H.264, an
// IRAP picture (IDR, CRA, BLA) in H.265. found is false while no slice has been seen; from
// is where to resume the scan once more bytes have arrived.
func firstPicture(c codec, b []byte, from int) (key, found bool, next int) {
	for i := max(from, 0); i+3 < len(b); i++ {
		if b[i+2] > 1 { // fast path: no start code can end here or at i+1
			i += 2
			continue
		}
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		h := b[i+3]
		switch c {
		case codecH264:
			if t := h & 0x1F; t >= 1 && t <= 5 {
				return t == 5, true, i
			}
		case codecH265:
			if t := h >> 1 & 0x3F; t < 32 {
				return t >= 16 && t <= 23, true, i
			}
		}
		i += 3
	}
	return false, false, max(len(b)-3, 0)
}

// floorDiv is floor(a/b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// mul90k converts nanoseconds to 90 kHz ticks without overflowing for any wall-clock time.
func mul90k(ns int64) int64 {
	hi, lo := bits.Mul64(uint64(ns), 9)
	q, _ := bits.Div64(hi, lo, 100000)
	return int64(q)
}
