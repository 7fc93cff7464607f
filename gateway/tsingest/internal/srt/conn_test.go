package srt

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rawflow/rawflow/internal/hlstest"
)

func dialFake(t *testing.T, f *fakeSender, cfg Config) *Conn {
	t.Helper()
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 2 * time.Second
	}
	c, err := Dial(context.Background(), f.addr(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	<-f.connected
	return c
}

// Losses are NAKed with the right list, a retransmission fills its gap, a packet never
// retransmitted is given up after Latency, and delivery stays in order throughout, across
// the sequence number wrap.
func TestLossRecoveryAndTooLateDrop(t *testing.T) {
	const latency = 300 * time.Millisecond
	f := newFakeSender(t, seqMask-2) // packet 2 is 0x7FFFFFFF, packet 3 wraps to 0
	c := dialFake(t, f, Config{Latency: latency, StreamID: "unit"})
	if got := f.hsReq.streamID; got != "unit" {
		t.Errorf("fake saw stream id %q", got)
	}
	if f.hsReq.srt == nil || f.hsReq.srt.flags&(flagTSBPDRCV|flagTLPKTDROP|flagPERIODICNAK|flagREXMITFLG) == 0 {
		t.Errorf("HSREQ %+v lacks receiver flags", f.hsReq.srt)
	}

	// 0 1 2 _ 4 5: packet 3 (sequence number 0, after the wrap) is missing.
	for _, i := range []int{0, 1, 2, 4, 5} {
		f.sendData(i, false)
	}
	if got, _ := f.waitNAK(t, 2*time.Second); !slices.Equal(got, []seqRange{{f.seq(3), f.seq(3)}}) {
		t.Fatalf("NAK %v, want [%d]", got, f.seq(3))
	}
	readPayloads(t, c, 0, 1, 2) // before the gap: delivered at once
	f.sendData(3, true)         // the retransmission
	readPayloads(t, c, 3, 4, 5)

	// 6 _ _ _ 10 11: 7-9 are never retransmitted.
	f.sendData(6, false)
	sent := time.Now()
	f.sendData(10, false)
	f.sendData(11, false)
	got, wire := f.waitNAK(t, 2*time.Second)
	if !slices.Equal(got, []seqRange{{f.seq(7), f.seq(9)}}) {
		t.Fatalf("NAK %v, want range %d-%d", got, f.seq(7), f.seq(9))
	}
	if len(wire) != 8 || binary.BigEndian.Uint32(wire)&0x80000000 == 0 {
		t.Errorf("range not encoded as a range: % x", wire)
	}
	// The loss is reported again while it lasts (periodic NAK).
	if again, _ := f.waitNAK(t, latency); !slices.Equal(again, got) {
		t.Errorf("periodic NAK %v, want %v", again, got)
	}
	readPayloads(t, c, 6)
	readPayloads(t, c, 10, 11) // only once 7-9 are given up
	if waited := time.Since(sent); waited < latency || waited > latency+time.Second {
		t.Errorf("packet 10 came %v after it was sent, want about the %v latency", waited, latency)
	}

	// The ACK moves past the dropped packets.
	deadline := time.Now().Add(2 * time.Second)
	for {
		p, ok := f.waitCtrl(ctrlACK, time.Until(deadline))
		if !ok {
			t.Fatal("no ACK for everything")
		}
		if a, err := parseACK(p.body); err == nil && a.lastAck == f.seq(12) {
			if a.availBuf == 0 || a.rtt == 0 {
				t.Errorf("ACK %+v", a)
			}
			break
		}
	}
	st := c.Stats()
	t.Logf("stats %+v", st)
	if st.Lost != 3 || st.Retransmitted != 1 || st.Packets != 9 || st.NAKsSent < 3 || st.ACKsSent == 0 {
		t.Errorf("stats %+v: want Lost 3, Retransmitted 1, Packets 9, NAKsSent >= 3", st)
	}
}

// Duplicates are ignored; a DROPREQ gives up its range at once.
func TestDuplicatesAndDropRequest(t *testing.T) {
	f := newFakeSender(t, 1000)
	c := dialFake(t, f, Config{Latency: 5 * time.Second})
	f.sendData(0, false)
	f.sendData(0, false)
	f.sendData(3, false)
	f.waitNAK(t, 2*time.Second)
	cif := binary.BigEndian.AppendUint32(nil, f.seq(1))
	cif = binary.BigEndian.AppendUint32(cif, f.seq(2))
	f.send(controlPacket(ctrlDropReq, 0, cif))
	readPayloads(t, c, 0, 3) // long before the 5 s latency
	st := c.Stats()
	if st.Duplicates != 1 || st.Lost != 2 {
		t.Errorf("stats %+v: want Duplicates 1, Lost 2", st)
	}
}

// isEOF reports whether err is io.EOF itself, as io.Reader's contract wants it: io.ReadAll
// and io.Copy compare with ==, so a wrapped io.EOF would be an error to them.
func isEOF(err error) bool {
	return err == io.EOF //nolint:errorlint // the contract is io.EOF itself, unwrapped (see above)
}

// A KEEPALIVE goes out when idle; SHUTDOWN ends the stream with io.EOF after its data.
func TestKeepaliveAndShutdown(t *testing.T) {
	f := newFakeSender(t, 5)
	c := dialFake(t, f, Config{})
	if _, ok := f.waitCtrl(ctrlKeepalive, 3*time.Second); !ok {
		t.Fatal("no KEEPALIVE")
	}
	f.sendData(0, false)
	f.sendData(1, false)
	f.send(controlPacket(ctrlShutdown, 0, padding))
	readPayloads(t, c, 0, 1)
	if n, err := c.Read(make([]byte, 10)); n != 0 || !isEOF(err) {
		t.Fatalf("Read after SHUTDOWN = %d, %v; want io.EOF", n, err)
	}
	if _, err := c.Read(make([]byte, 10)); !isEOF(err) {
		t.Fatalf("second Read = %v", err)
	}
}

// A silent peer ends the connection with a timeout error after PeerIdleTimeout.
func TestPeerIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	f := newFakeSender(t, 77)
	f.ackack.Store(false) // total silence after the data
	c := dialFake(t, f, Config{PeerIdleTimeout: idle})
	f.sendData(0, false)
	last := time.Now()
	readPayloads(t, c, 0)
	_, err := c.Read(make([]byte, 100))
	waited := time.Since(last)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v, want a timeout error", err)
	}
	if waited < idle-20*time.Millisecond || waited > idle+500*time.Millisecond {
		t.Errorf("timed out after %v, want about %v", waited, idle)
	}
	t.Log(err)
}

// Dial to a port where nothing listens fails within HandshakeTimeout.
func TestDialNoListener(t *testing.T) {
	const timeout = 300 * time.Millisecond
	port := hlstest.FreeUDPPort(t)
	start := time.Now()
	c, err := Dial(context.Background(), net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Config{HandshakeTimeout: timeout})
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("error %q", err)
	}
	if took < timeout-20*time.Millisecond || took > timeout+300*time.Millisecond {
		t.Errorf("Dial took %v, want about %v", took, timeout)
	}

	// Cancelling ctx ends the handshake at once, whatever HandshakeTimeout says.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = Dial(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Config{HandshakeTimeout: 10 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("Dial with a 100ms ctx: %v after %v", err, time.Since(start))
	}
}

// Close is idempotent, sends SHUTDOWN, makes Read fail with net.ErrClosed, and leaves no
// goroutine behind (Dial, Listen and Accept side).
func TestCloseIdempotentNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		f := newFakeSender(t, 1)
		c, err := Dial(context.Background(), f.addr(), Config{HandshakeTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		<-f.connected
		f.sendData(0, false)
		readPayloads(t, c, 0)
		readErr := make(chan error, 1)
		go func() { _, rerr := c.Read(make([]byte, 10)); readErr <- rerr }()
		time.Sleep(20 * time.Millisecond) // let the Read block
		for range 3 {
			if err = c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err = <-readErr; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Read after Close = %v", err)
		}
		if _, err = c.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close = %v", err)
		}
		if _, ok := f.waitCtrl(ctrlShutdown, 2*time.Second); !ok {
			t.Error("no SHUTDOWN sent")
		}
		f.close()

		l, err := Listen("127.0.0.1:0", Config{})
		if err != nil {
			t.Fatal(err)
		}
		dc, err := Dial(context.Background(), l.Addr().String(), Config{HandshakeTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ac, err := l.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dc.Close()
		// The listener side sees the SHUTDOWN.
		if _, err := ac.Read(make([]byte, 10)); !isEOF(err) {
			t.Errorf("accepted conn Read after the caller closed = %v, want io.EOF", err)
		}
		ac.Close()
		ac.Close()
		l.Close()
		l.Close()
		if _, err := l.Accept(context.Background()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v", err)
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Data delivered but not read is bounded: the oldest is dropped and counted.
func TestUnreadBound(t *testing.T) {
	c := newConn(connParams{isn: 0, latency: time.Second, idleTimeout: time.Second})
	chunk := make([]byte, 1316)
	c.mu.Lock()
	for i := range maxUnreadBytes/len(chunk) + 100 {
		chunk[0] = byte(i)
		c.enqueue(append([]byte(nil), chunk...))
	}
	c.mu.Unlock()
	st := c.Stats()
	if st.ReaderOverflow != 100 && st.ReaderOverflow != 101 || st.Lost != st.ReaderOverflow {
		t.Errorf("ReaderOverflow %d, Lost %d; want about 100", st.ReaderOverflow, st.Lost)
	}
	if c.unreadBytes > maxUnreadBytes {
		t.Errorf("%d bytes held", c.unreadBytes)
	}
	// The oldest went; the rest reads in order.
	got := make([]byte, 1316)
	if err := readFull(c, got); err != nil || got[0] != byte(st.ReaderOverflow) {
		t.Errorf("first payload %d after dropping %d (%v)", got[0], st.ReaderOverflow, err)
	}
}
