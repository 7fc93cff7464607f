package srt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Handshake constants (draft-sharabayko-srt, "Handshake" and "Handshake Messages").
const (
	handshakeCIFSize = 48 // fixed part of a handshake CIF, before any extension

	hsMagic  = 0x4A17 // Extension Field of an HSv5 listener's INDUCTION response
	udtDgram = 2      // Extension Field of a caller's INDUCTION request (legacy UDT socket type)

	hsInduction  uint32 = 0x00000001
	hsConclusion uint32 = 0xFFFFFFFF
	hsRejectBase uint32 = 1000 // Handshake Type 1000+reason rejects a connection

	// Extension Field flags of a CONCLUSION.
	extFlagHSREQ  = 0x1
	extFlagKMREQ  = 0x2
	extFlagCONFIG = 0x4

	// Extension types.
	extHSREQ      = 1
	extHSRSP      = 2
	extKMREQ      = 3
	extKMRSP      = 4
	extSID        = 5
	extCongestion = 6
	extFilter     = 7
	extGroup      = 8

	// SRT Flags of the HSREQ/HSRSP extension.
	flagTSBPDSND    = 0x01
	flagTSBPDRCV    = 0x02
	flagCRYPT       = 0x04 // legacy, must be set: we understand the KK bits
	flagTLPKTDROP   = 0x08
	flagPERIODICNAK = 0x10
	flagREXMITFLG   = 0x20 // legacy, must be set: we understand the R bit
	flagSTREAM      = 0x40 // buffer (file) mode: not supported

	// ourFlags is what we announce, as a live-mode receiver: TSBPD latency, too-late drop,
	// periodic NAK reports and the two legacy flags. TSBPDSND is set too because HSv5
	// connections are bidirectional in principle and libsrt peers expect it.
	ourFlags = flagTSBPDSND | flagTSBPDRCV | flagCRYPT | flagTLPKTDROP | flagPERIODICNAK | flagREXMITFLG

	srtVersion     = 0x010501 // SRT 1.5.1, what Debian's libsrt is
	minPeerVersion = 0x010300 // HSv5 appeared in SRT 1.3.0

	maxStreamIDLen = 512
	ourMTU         = maxPacketSize
	ourFlowWindow  = ringSize
)

// Reject reasons (Handshake Type = 1000 + reason).
const (
	rejRogue      = 4
	rejBacklog    = 5
	rejClose      = 7
	rejVersion    = 8
	rejBadSecret  = 10
	rejUnsecure   = 11
	rejMessageAPI = 12
	rejCongestion = 13
	rejFilter     = 14
	rejGroup      = 15
	rejCrypto     = 17
)

var rejectNames = map[uint32]string{
	0: "unknown", 1: "system error", 2: "rejected by peer", 3: "resource allocation problem",
	4: "incorrect data in handshake", 5: "listener's backlog exceeded", 6: "internal program error",
	7: "socket is closing", 8: "peer version too old", 9: "rendezvous cookie collision",
	10: "wrong passphrase", 11: "passphrase required or unexpected", 12: "stream flag collision",
	13: "incompatible congestion controller", 14: "incompatible packet filter", 15: "incompatible group",
	16: "timeout", 17: "incompatible cryptographic mode",
}

// ErrEncryptionUnsupported is wrapped by handshake and Read errors when the peer requires or
// uses encryption: this package has no AES support (no passphrase).
var ErrEncryptionUnsupported = errors.New("peer requires encryption (a passphrase), which this SRT receiver does not support")

// RejectError is a handshake the peer rejected, with its reason code.
type RejectError struct {
	Reason uint32 // SRT reject reason: Handshake Type minus 1000 (e.g. 5 backlog, 11 unsecure, 1403 forbidden)
}

func (e *RejectError) Error() string {
	name := rejectNames[e.Reason]
	switch {
	case name != "":
	case e.Reason >= 1000 && e.Reason < 2000:
		name = "rejected by the peer application"
	case e.Reason >= 2000:
		name = "user-defined reason"
	default:
		name = "unknown reason"
	}
	return fmt.Sprintf("connection rejected: %s (reject reason %d, handshake type %d)", name, e.Reason, e.Reason+hsRejectBase)
}

// isRejectType tells whether a Handshake Type is a rejection (1000 + reason) rather than
// one of the request types (0, 1 and 0xFFFFFFFD..0xFFFFFFFF).
func isRejectType(t uint32) bool {
	return t >= hsRejectBase && t < 0xFFFFFFFD
}

// isEncryptionReject tells whether a reject reason is about passphrases or ciphers.
func isEncryptionReject(reason uint32) bool {
	return reason == rejBadSecret || reason == rejUnsecure || reason == rejCrypto
}

// hsExt is the content of the HSREQ/HSRSP extension.
type hsExt struct {
	version    uint32 // SRT version, 0x00XXYYZZ
	flags      uint32
	rcvLatency uint16 // ms: latency the sender of this extension applies when receiving
	sndLatency uint16 // ms: latency it asks its peer to apply to what it sends
}

// handshake is a handshake CIF with the extensions this package knows.
type handshake struct {
	version    uint32
	encryption uint16 // advertised cipher key size / 8 (0: none)
	extField   uint16
	isn        uint32
	mtu        uint32
	flowWindow uint32
	hsType     uint32
	socketID   uint32
	cookie     uint32
	peerIP     [16]byte

	srt        *hsExt // HSREQ or HSRSP contents
	srtExtType uint16 // extHSREQ or extHSRSP
	streamID   string
	hasKM      bool // KMREQ or KMRSP present: the peer wants encryption
	congestion string
	hasFilter  bool
	hasGroup   bool
}

// parseHandshake decodes a handshake CIF. Extensions are only read from a version-5
// CONCLUSION or rejection; anything after the fixed part of other handshakes is ignored.
func parseHandshake(cif []byte) (handshake, error) {
	if len(cif) < handshakeCIFSize {
		return handshake{}, fmt.Errorf("srt: handshake of %d bytes, want at least %d", len(cif), handshakeCIFSize)
	}
	be := binary.BigEndian
	h := handshake{
		version:    be.Uint32(cif[0:]),
		encryption: be.Uint16(cif[4:]),
		extField:   be.Uint16(cif[6:]),
		isn:        be.Uint32(cif[8:]) & seqMask,
		mtu:        be.Uint32(cif[12:]),
		flowWindow: be.Uint32(cif[16:]),
		hsType:     be.Uint32(cif[20:]),
		socketID:   be.Uint32(cif[24:]),
		cookie:     be.Uint32(cif[28:]),
	}
	copy(h.peerIP[:], cif[32:48])
	if h.version < 5 || h.hsType == hsInduction {
		return h, nil
	}
	rest := cif[handshakeCIFSize:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return h, errors.New("srt: truncated handshake extension header")
		}
		typ, words := be.Uint16(rest), int(be.Uint16(rest[2:]))
		rest = rest[4:]
		if words*4 > len(rest) {
			return h, fmt.Errorf("srt: handshake extension %d claims %d words, %d bytes left", typ, words, len(rest))
		}
		body := rest[:words*4]
		rest = rest[words*4:]
		switch typ {
		case extHSREQ, extHSRSP:
			if len(body) < 12 {
				return h, fmt.Errorf("srt: HSREQ/HSRSP extension of %d bytes, want 12", len(body))
			}
			h.srt = &hsExt{
				version:    be.Uint32(body),
				flags:      be.Uint32(body[4:]),
				rcvLatency: be.Uint16(body[8:]),
				sndLatency: be.Uint16(body[10:]),
			}
			h.srtExtType = typ
		case extKMREQ, extKMRSP:
			h.hasKM = true
		case extSID:
			sid, err := decodeExtString(body)
			if err != nil {
				return h, fmt.Errorf("srt: stream id: %w", err)
			}
			h.streamID = sid
		case extCongestion:
			cc, err := decodeExtString(body)
			if err != nil {
				return h, fmt.Errorf("srt: congestion controller: %w", err)
			}
			h.congestion = cc
		case extFilter:
			h.hasFilter = true
		case extGroup:
			h.hasGroup = true
		}
		// Unknown extensions are skipped.
	}
	return h, nil
}

// appendTo appends the wire form of h (fixed part, then HSREQ/HSRSP and SID extensions when
// set) to dst.
func (h *handshake) appendTo(dst []byte) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, h.version)
	dst = be.AppendUint16(dst, h.encryption)
	dst = be.AppendUint16(dst, h.extField)
	dst = be.AppendUint32(dst, h.isn&seqMask)
	dst = be.AppendUint32(dst, h.mtu)
	dst = be.AppendUint32(dst, h.flowWindow)
	dst = be.AppendUint32(dst, h.hsType)
	dst = be.AppendUint32(dst, h.socketID)
	dst = be.AppendUint32(dst, h.cookie)
	dst = append(dst, h.peerIP[:]...)
	if h.srt != nil {
		dst = be.AppendUint16(dst, h.srtExtType)
		dst = be.AppendUint16(dst, 3)
		dst = be.AppendUint32(dst, h.srt.version)
		dst = be.AppendUint32(dst, h.srt.flags)
		dst = be.AppendUint16(dst, h.srt.rcvLatency)
		dst = be.AppendUint16(dst, h.srt.sndLatency)
	}
	if h.streamID != "" {
		enc := encodeExtString(h.streamID)
		dst = be.AppendUint16(dst, extSID)
		dst = be.AppendUint16(dst, uint16(len(enc)/4))
		dst = append(dst, enc...)
	}
	return dst
}

// encodeExtString encodes a string extension (SID, congestion controller): NUL-padded to
// whole 32-bit words, each word stored little-endian. On the wire "cam1" is "1mac": libsrt
// copies the bytes into host (little-endian) words and then sends every word in network
// byte order, which reverses the bytes within each word. Verified against ffmpeg's libsrt.
func encodeExtString(s string) []byte {
	b := make([]byte, (len(s)+3)/4*4)
	copy(b, s)
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return b
}

// decodeExtString reverses encodeExtString and drops the NUL padding.
func decodeExtString(body []byte) (string, error) {
	if len(body) > maxStreamIDLen {
		return "", fmt.Errorf("%d bytes, more than the %d allowed", len(body), maxStreamIDLen)
	}
	b := bytes.Clone(body)
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return string(bytes.TrimRight(b, "\x00")), nil
}

// encodePeerIP fills the handshake's Peer IP Address field the way libsrt does: the address
// bytes in host-order 32-bit words sent in network order, i.e. reversed within each word
// (an IPv4 address takes the first word, the rest are zero). The field is informational:
// neither libsrt nor this package checks it.
func encodePeerIP(a netip.Addr) [16]byte {
	var out [16]byte
	var raw []byte
	if a.Is4() || a.Is4In6() {
		v4 := a.Unmap().As4()
		raw = v4[:]
	} else {
		v6 := a.As16()
		raw = v6[:]
	}
	copy(out[:], raw)
	for i := 0; i < len(raw); i += 4 {
		out[i], out[i+1], out[i+2], out[i+3] = out[i+3], out[i+2], out[i+1], out[i]
	}
	return out
}

// latencyMS converts a duration to the 16-bit millisecond fields of HSREQ/HSRSP.
func latencyMS(d int64) uint16 {
	ms := d / 1e6
	switch {
	case ms < 0:
		return 0
	case ms > 0xFFFF:
		return 0xFFFF
	}
	return uint16(ms)
}

// controlPacket wraps a CIF into a control packet (timestamp and destination are set by the
// sender).
func controlPacket(t ctrlType, info uint32, cif []byte) packet {
	return packet{control: true, ctrl: t, info: info, body: cif}
}
