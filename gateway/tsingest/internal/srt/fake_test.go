package srt

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSender is a test SRT listener that sends data: it answers the caller handshake with
// its own ISN, acknowledges ACKs with ACKACK (when ackack is set) and hands every other
// control packet it receives to the test on ctrl. It uses this package's encoders.
type fakeSender struct {
	t      *testing.T
	sock   *net.UDPConn
	start  time.Time
	ourID  uint32
	isn    uint32
	ackack atomic.Bool

	ctrl      chan packet   // control packets from the Conn (bodies copied)
	connected chan struct{} // closed once the CONCLUSION was answered

	mu      sync.Mutex
	peer    netip.AddrPort // the Conn's address
	peerID  uint32         // the Conn's socket id
	hsReq   handshake      // the caller's CONCLUSION
	closeMu sync.Once
	wg      sync.WaitGroup
}

func newFakeSender(t *testing.T, isn uint32) *fakeSender {
	t.Helper()
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSender{
		t: t, sock: sock, start: time.Now(), ourID: 0x1234567, isn: isn & seqMask,
		ctrl: make(chan packet, 4096), connected: make(chan struct{}),
	}
	f.ackack.Store(true)
	f.wg.Add(1)
	go f.loop()
	t.Cleanup(f.close)
	return f
}

func (f *fakeSender) addr() string { return f.sock.LocalAddr().String() }

func (f *fakeSender) close() {
	f.closeMu.Do(func() {
		f.sock.Close()
		f.wg.Wait()
	})
}

func (f *fakeSender) loop() {
	defer f.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := f.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p, err := parsePacket(buf[:n])
		if err != nil || !p.control {
			continue
		}
		p.body = append([]byte(nil), p.body...)
		switch p.ctrl {
		case ctrlHandshake:
			f.handshake(p, unmap(from))
		case ctrlACK:
			if f.ackack.Load() {
				f.send(controlPacket(ctrlACKACK, p.info, nil))
			}
			fallthrough
		default:
			select {
			case f.ctrl <- p:
			default: // the test stopped looking
			}
		}
	}
}

func (f *fakeSender) handshake(p packet, from netip.AddrPort) {
	hs, err := parseHandshake(p.body)
	if err != nil {
		f.t.Errorf("fake: bad handshake: %v", err)
		return
	}
	resp := handshake{version: 5, mtu: ourMTU, flowWindow: ourFlowWindow, socketID: f.ourID, isn: f.isn, hsType: hs.hsType}
	switch hs.hsType {
	case hsInduction:
		resp.extField, resp.cookie = hsMagic, 0xC00C1E
	case hsConclusion:
		if hs.cookie != 0xC00C1E {
			f.t.Errorf("fake: CONCLUSION cookie %#x", hs.cookie)
		}
		resp.extField = extFlagHSREQ
		resp.srt, resp.srtExtType = &hsExt{version: srtVersion, flags: ourFlags}, extHSRSP
		f.mu.Lock()
		first := !f.peer.IsValid()
		f.peer, f.peerID, f.hsReq = from, hs.socketID, hs
		f.mu.Unlock()
		if first {
			defer close(f.connected)
		}
	default:
		return
	}
	pkt := controlPacket(ctrlHandshake, 0, resp.appendTo(nil))
	pkt.dest = hs.socketID
	if _, err := f.sock.WriteToUDPAddrPort(pkt.appendTo(nil), from); err != nil {
		f.t.Errorf("fake: %v", err)
	}
}

// send sends p to the connected Conn.
func (f *fakeSender) send(p packet) {
	f.mu.Lock()
	peer, id := f.peer, f.peerID
	f.mu.Unlock()
	p.dest = id
	p.timestamp = uint32(time.Since(f.start) / time.Microsecond)
	if _, err := f.sock.WriteToUDPAddrPort(p.appendTo(nil), peer); err != nil {
		f.t.Errorf("fake: send: %v", err)
	}
}

// seq is the sequence number of the i-th packet of the stream.
func (f *fakeSender) seq(i int) uint32 { return seqAdd(f.isn, i) }

// payload is the (recognisable) content of the i-th packet.
func payload(i int) []byte {
	return fmt.Appendf(nil, "packet %06d %s", i, "......................................")
}

// sendData sends the i-th data packet.
func (f *fakeSender) sendData(i int, retransmitted bool) {
	f.send(packet{seq: f.seq(i), position: 3, msgNo: uint32(i + 1), retransmitted: retransmitted, body: payload(i)})
}

// waitCtrl returns the next control packet of type typ, skipping others.
func (f *fakeSender) waitCtrl(typ ctrlType, timeout time.Duration) (packet, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case p := <-f.ctrl:
			if p.ctrl == typ {
				return p, true
			}
		case <-deadline:
			return packet{}, false
		}
	}
}

// waitNAK returns the loss list of the next NAK.
func (f *fakeSender) waitNAK(t *testing.T, timeout time.Duration) ([]seqRange, []byte) {
	t.Helper()
	p, ok := f.waitCtrl(ctrlNAK, timeout)
	if !ok {
		t.Fatalf("no NAK within %v", timeout)
	}
	ranges, err := parseLossList(p.body)
	if err != nil {
		t.Fatalf("bad NAK: %v", err)
	}
	return ranges, p.body
}

// readPayloads reads the payloads of the given packet indexes, in that order.
func readPayloads(t *testing.T, c *Conn, idx ...int) {
	t.Helper()
	for _, i := range idx {
		want := payload(i)
		got := make([]byte, len(want))
		if err := readFull(c, got); err != nil {
			t.Fatalf("reading packet %d: %v", i, err)
		}
		if string(got) != string(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func readFull(c *Conn, p []byte) error {
	for n := 0; n < len(p); {
		k, err := c.Read(p[n:])
		n += k
		if err != nil {
			return err
		}
	}
	return nil
}
