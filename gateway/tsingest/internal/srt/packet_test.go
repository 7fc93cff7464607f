package srt

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSeqArithmetic(t *testing.T) {
	for _, c := range []struct {
		a, b uint32
		want int32
	}{
		{5, 3, 2}, {3, 5, -2}, {0, seqMask, 1}, {seqMask, 0, -1}, {2, seqMask - 1, 4}, {1 << 29, 0, 1 << 29},
	} {
		if got := seqDiff(c.a, c.b); got != c.want {
			t.Errorf("seqDiff(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if seqAdd(seqMask, 1) != 0 || seqAdd(0, -1) != seqMask || seqAdd(10, -3) != 7 {
		t.Error("seqAdd does not wrap at 31 bits")
	}
}

func TestPacketRoundTrip(t *testing.T) {
	d := packet{seq: seqMask, position: 3, inOrder: true, keyFlags: 0, retransmitted: true, msgNo: 0x3FFFFFF, timestamp: 99, dest: 7, body: []byte("ts")}
	got, err := parsePacket(d.appendTo(nil))
	if err != nil || got.control || got.seq != d.seq || got.position != 3 || !got.inOrder || !got.retransmitted || got.msgNo != d.msgNo || got.timestamp != 99 || got.dest != 7 || string(got.body) != "ts" {
		t.Errorf("data round trip: %+v, %v", got, err)
	}
	c := packet{control: true, ctrl: ctrlACK, subtype: 0, info: 12, dest: 0xABCDEF, body: ackInfo{lastAck: 5, rtt: 100000}.appendTo(nil)}
	got, err = parsePacket(c.appendTo(nil))
	if err != nil || !got.control || got.ctrl != ctrlACK || got.info != 12 || got.dest != 0xABCDEF {
		t.Fatalf("control round trip: %+v, %v", got, err)
	}
	if a, err := parseACK(got.body); err != nil || a.lastAck != 5 || a.rtt != 100000 {
		t.Errorf("ACK %+v, %v", a, err)
	}
	if _, err := parsePacket(make([]byte, 15)); err == nil {
		t.Error("15-byte packet parsed")
	}
	if _, err := parsePacket(make([]byte, maxPacketSize+1)); err == nil {
		t.Error("oversized packet parsed")
	}
}

func TestLossList(t *testing.T) {
	in := []seqRange{{7, 7}, {seqMask - 1, 1}, {20, 30}}
	wire, n := appendLossList(nil, in, maxLossWords)
	if n != 3 || len(wire) != 20 {
		t.Fatalf("encoded %d ranges in %d bytes", n, len(wire))
	}
	out, err := parseLossList(wire)
	if err != nil || !slices.Equal(out, in) {
		t.Errorf("parse = %v, %v; want %v", out, err, in)
	}
	if _, n := appendLossList(nil, in, 2); n != 1 {
		t.Errorf("with room for 2 words, encoded %d ranges, want 1", n)
	}
	for _, bad := range []string{"800000", "80000001", "8000000180000002", "0000000a00000001800000050000000"} {
		b, _ := hex.DecodeString(bad)
		if _, err := parseLossList(b); err == nil {
			t.Errorf("loss list %s parsed", bad)
		}
	}
}

func TestExtStringByteOrder(t *testing.T) {
	if got := string(encodeExtString("cam1")); got != "1mac" {
		t.Errorf("encode(cam1) = %q, want 1mac", got)
	}
	// As libsrt (ffmpeg) sent streamid=abcdefg, captured on the wire.
	if got := string(encodeExtString("abcdefg")); got != "dcba\x00gfe" {
		t.Errorf("encode(abcdefg) = %q", got)
	}
	for _, s := range []string{"", "a", "cam1", "#!::r=live/cam-1,m=publish", strings.Repeat("x", 512)} {
		if got, err := decodeExtString(encodeExtString(s)); err != nil || got != s {
			t.Errorf("round trip %q = %q, %v", s, got, err)
		}
	}
	if _, err := decodeExtString(make([]byte, 516)); err == nil {
		t.Error("516-byte stream id accepted")
	}
}

// The CONCLUSION that ffmpeg 5.1 / libsrt 1.5.1 sends as a receiving caller with
// streamid=abcdefg, captured between the two ffmpeg processes.
const libsrtConclusion = "0000000500000005289033 1c000005dc00002000ffffffff0ae44c7c7fadbeb0" +
	"0100007f000000000000000000000000" + "00010003 00010501 000000bf 00780000" + "00050002 64636261 00676665"

func TestParseLibsrtConclusion(t *testing.T) {
	b, err := hex.DecodeString(strings.ReplaceAll(libsrtConclusion, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := parseHandshake(b)
	if err != nil {
		t.Fatal(err)
	}
	if hs.version != 5 || hs.hsType != hsConclusion || hs.extField != extFlagHSREQ|extFlagCONFIG || hs.cookie != 0x7fadbeb0 || hs.socketID != 0x0ae44c7c {
		t.Errorf("fixed part %+v", hs)
	}
	if hs.srt == nil || hs.srtExtType != extHSREQ || hs.srt.version != 0x010501 || hs.srt.flags != 0xbf || hs.srt.rcvLatency != 120 || hs.srt.sndLatency != 0 {
		t.Errorf("HSREQ %+v", hs.srt)
	}
	if hs.streamID != "abcdefg" {
		t.Errorf("stream id %q", hs.streamID)
	}
	if checkConclusion(hs) != 0 {
		t.Errorf("our listener would reject it: %d", checkConclusion(hs))
	}
	// And our encoder writes the same layout.
	if enc := hs.appendTo(nil); !bytes.Equal(enc, b) {
		t.Errorf("re-encoded:\n% x\nwant\n% x", enc, b)
	}
}

func TestPeerIP(t *testing.T) {
	got := encodePeerIP(netip.MustParseAddr("127.0.0.1"))
	if hex.EncodeToString(got[:]) != "0100007f000000000000000000000000" { // as libsrt sends it
		t.Errorf("127.0.0.1 → % x", got)
	}
}

func FuzzParsePacket(f *testing.F) {
	ind := handshake{version: 4, extField: udtDgram, isn: 1, mtu: 1500, flowWindow: 8192, hsType: hsInduction, socketID: 9}
	conc := conclusionRequest(ind, 77, Config{StreamID: "cam1", Latency: 120e6})
	for _, p := range []packet{
		{seq: 1, position: 3, body: []byte{0x47, 1, 2}},
		controlPacket(ctrlHandshake, 0, ind.appendTo(nil)),
		controlPacket(ctrlHandshake, 0, conc.appendTo(nil)),
		controlPacket(ctrlACK, 3, ackInfo{lastAck: 10}.appendTo(nil)),
		controlPacket(ctrlNAK, 0, []byte{0x80, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 9}),
		controlPacket(ctrlDropReq, 0, []byte{0, 0, 0, 1, 0, 0, 0, 2}),
	} {
		f.Add(p.appendTo(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePacket(b)
		if err != nil {
			return
		}
		// Whatever parses must survive a round trip.
		q, err := parsePacket(p.appendTo(nil))
		if err != nil || q.control != p.control || q.dest != p.dest || !bytes.Equal(q.body, p.body) {
			t.Fatalf("round trip: %+v vs %+v (%v)", p, q, err)
		}
		if !p.control {
			return
		}
		switch p.ctrl {
		case ctrlHandshake:
			if hs, err := parseHandshake(p.body); err == nil {
				checkConclusion(hs)
				if len(hs.streamID) > maxStreamIDLen {
					t.Fatalf("stream id of %d bytes", len(hs.streamID))
				}
			}
		case ctrlNAK:
			if ranges, err := parseLossList(p.body); err == nil {
				if wire, n := appendLossList(nil, ranges, len(p.body)/4); n != len(ranges) || len(wire) > len(p.body) {
					t.Fatalf("loss list %v re-encoded to %d bytes (%d ranges), from %d", ranges, len(wire), n, len(p.body))
				}
			}
		case ctrlDropReq:
			if r, err := parseDropReq(p.body); err == nil && seqDiff(r.to, r.from) < 0 {
				t.Fatalf("DROPREQ range %d-%d goes backwards", r.from, r.to)
			}
		}
	})
}

// FuzzConnPackets feeds a connection arbitrary datagrams (the input split on 2-byte length
// prefixes), interleaved with timer ticks: nothing may panic and the bounds must hold.
func FuzzConnPackets(f *testing.F) {
	data := func(seq uint32, flags byte) []byte {
		p := packet{seq: seq, position: 3, retransmitted: flags&1 != 0, dest: 1, body: []byte{0x47, flags}}
		return p.appendTo(nil)
	}
	frame := func(pkts ...[]byte) []byte {
		var out []byte
		for _, p := range pkts {
			out = append(out, byte(len(p)>>8), byte(len(p)))
			out = append(out, p...)
		}
		return out
	}
	drop := controlPacket(ctrlDropReq, 0, []byte{0, 0, 0, 3, 0, 0, 0x40, 0})
	drop.dest = 1
	f.Add(frame(data(0, 0), data(2, 0), data(1, 1), data(seqMask, 0), drop.appendTo(nil)))
	f.Add(frame(data(5, 0), data(5+ringSize*3, 0), data(4, 0)))
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer sock.Close()
	// The connection "sends" to a port nobody reads.
	peer := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 9)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newConn(connParams{sock: sock, peer: peer, localID: 1, peerID: 2, latency: 5 * time.Millisecond, idleTimeout: time.Hour})
		now := time.Now()
		for len(in) >= 2 {
			n := int(in[0])<<8 | int(in[1])
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			if p, err := parsePacket(in[:n]); err == nil {
				c.handlePacket(p, now)
			}
			in = in[n:]
			now = now.Add(3 * time.Millisecond)
			c.tick(now)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.unreadBytes > maxUnreadBytes || c.rcv.missing < 0 || c.rcv.free() < 0 || c.rcv.free() > ringSize {
			t.Fatalf("unread %d, missing %d, free %d", c.unreadBytes, c.rcv.missing, c.rcv.free())
		}
	})
}
