package srt

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// Our caller against our listener: the stream id crosses (with the libsrt byte order on
// both ends), and a caller beyond the listener's limit is rejected with a reason.
func TestListenerStreamIDAndReject(t *testing.T) {
	l, err := Listen("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.mu.Lock()
	l.maxConns = 1
	l.mu.Unlock()

	const sid = "#!::r=live/cam-1,m=publish" // 26 bytes: not a whole number of words
	dc, err := Dial(context.Background(), l.Addr().String(), Config{StreamID: sid, HandshakeTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ac, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if ac.StreamID() != sid {
		t.Errorf("accepted StreamID() = %q, want %q", ac.StreamID(), sid)
	}

	_, err = Dial(context.Background(), l.Addr().String(), Config{HandshakeTimeout: 2 * time.Second})
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Reason != rejBacklog {
		t.Fatalf("second Dial = %v, want a backlog rejection", err)
	}
	t.Log(err)

	// Once the first caller leaves, there is room again.
	dc.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := Dial(context.Background(), l.Addr().String(), Config{HandshakeTimeout: 2 * time.Second})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after the first caller left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeCall sends one handshake from sock to the listener and returns the answer.
func fakeCall(t *testing.T, sock *net.UDPConn, to *net.UDPAddr, hs handshake) handshake {
	t.Helper()
	fakeSend(t, sock, to, controlPacket(ctrlHandshake, 0, hs.appendTo(nil)))
	return readHandshake(t, sock, hs.socketID)
}

// fakeSend sends p from sock to the listener.
func fakeSend(t *testing.T, sock *net.UDPConn, to *net.UDPAddr, p packet) {
	t.Helper()
	if _, err := sock.WriteToUDP(p.appendTo(nil), to); err != nil {
		t.Fatal(err)
	}
}

// noHandshake fails the test if a handshake arrives on sock within d; what names the
// request it would answer.
func noHandshake(t *testing.T, sock *net.UDPConn, d time.Duration, what string) {
	t.Helper()
	if err := sock.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 2000); ; {
		n, err := sock.Read(buf)
		if err != nil {
			return
		}
		if r, err := parsePacket(buf[:n]); err == nil && r.ctrl == ctrlHandshake {
			t.Errorf("answer of %d bytes to %s", n, what)
		}
	}
}

// readHandshake returns the next handshake that arrives on sock, skipping other packets.
func readHandshake(t *testing.T, sock *net.UDPConn, dest uint32) handshake {
	t.Helper()
	if err := sock.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	for {
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("no handshake answer: %v", err)
		}
		r, err := parsePacket(buf[:n])
		if err != nil || !r.control || r.ctrl != ctrlHandshake {
			continue
		}
		if r.dest != dest {
			t.Errorf("answer addressed to %#x, want %#x", r.dest, dest)
		}
		ans, err := parseHandshake(r.body)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
}

// A repeated CONCLUSION (our answer was lost) gets the same answer and no second
// connection; a CONCLUSION with a wrong cookie gets nothing; an encrypted caller is refused.
func TestListenerHandshakeEdges(t *testing.T) {
	l, err := Listen("127.0.0.1:0", Config{Latency: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	to := l.Addr().(*net.UDPAddr)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	ind := handshake{version: 4, extField: udtDgram, isn: 42, mtu: 1500, flowWindow: 8192, hsType: hsInduction, socketID: 0xCA11}
	ans := fakeCall(t, sock, to, ind)
	if ans.version != 5 || ans.extField != hsMagic || ans.cookie == 0 || ans.hsType != hsInduction {
		t.Fatalf("INDUCTION answer %+v", ans)
	}
	conc := conclusionRequest(ind, ans.cookie, Config{Latency: 500 * time.Millisecond, StreamID: "x"})
	a1 := fakeCall(t, sock, to, conc)
	a2 := fakeCall(t, sock, to, conc)
	if a1.hsType != hsConclusion || a1.socketID == 0 || a2.socketID != a1.socketID {
		t.Fatalf("CONCLUSION answers %+v / %+v", a1, a2)
	}
	if a1.srt == nil || a1.srtExtType != extHSRSP || a1.srt.rcvLatency != 500 || a1.isn != 42 {
		t.Errorf("HSRSP %+v (isn %d): want the caller's 500ms latency and ISN", a1.srt, a1.isn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.latency != 500*time.Millisecond || c.StreamID() != "x" {
		t.Errorf("conn latency %v, stream id %q", c.latency, c.StreamID())
	}
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if extra, err := l.Accept(short); err == nil {
		extra.Close()
		t.Error("a repeated CONCLUSION made a second connection")
	}

	// Wrong cookie: silence.
	bad := conc
	bad.socketID, bad.cookie = 0xBAD, ans.cookie+1
	fakeSend(t, sock, to, controlPacket(ctrlHandshake, 0, bad.appendTo(nil)))
	noHandshake(t, sock, 150*time.Millisecond, "a bad cookie")

	// A caller with a passphrase (KMREQ) is rejected as unsecure.
	enc := conc
	enc.socketID = 0xE0C
	wire := enc.appendTo(nil)
	wire = append(wire, 0, extKMREQ, 0, 1, 0, 0, 0, 0)
	fakeSend(t, sock, to, controlPacket(ctrlHandshake, 0, wire))
	if rh := readHandshake(t, sock, enc.socketID); rh.hsType != hsRejectBase+rejUnsecure {
		t.Errorf("answer to an encrypted caller: type %d, want %d", rh.hsType, hsRejectBase+rejUnsecure)
	}
}
