//go:build e2e

package srt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rawflow/rawflow/internal/hlstest"
)

// These tests run ffmpeg (Debian's build links libsrt) as the SRT peer.

// lockedBuffer collects ffmpeg's stderr for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startFFmpeg runs ffmpeg producing a live MPEG-TS test stream (H.264 + AAC) to url. It is
// killed when the test ends; its stderr is returned, and logged if the test failed.
func startFFmpeg(t *testing.T, url, logLevel string) *lockedBuffer {
	t.Helper()
	hlstest.RequireTool(t, "ffmpeg") // fails, not skips, in CI
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "-hide_banner", "-loglevel", logLevel, "-nostdin",
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac",
		"-f", "mpegts", url)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ffmpeg: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ffmpeg stderr:\n%s", stderr.String())
		}
	})
	return stderr
}

// readTS reads from c until want bytes or the duration elapsed, whichever is first, and
// returns the bytes read. Any Read error fails the test (the idle timeout bounds a stall).
func readTS(t *testing.T, c *Conn, want int, d time.Duration) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(d)
	for len(got) < want && time.Now().Before(deadline) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", len(got), err)
		}
	}
	return got
}

// checkTS asserts data is whole MPEG-TS packets from its first byte and that the continuity
// counter of every PID carrying payload advances by exactly one (mod 16) each packet,
// unless the adaptation field flags a discontinuity.
func checkTS(t *testing.T, data []byte) {
	t.Helper()
	data = data[:len(data)/188*188]
	if len(data) == 0 {
		t.Fatal("no TS packets")
	}
	last := map[uint16]byte{}
	for off := 0; off < len(data); off += 188 {
		p := data[off : off+188]
		if p[0] != 0x47 {
			t.Fatalf("byte %d (packet %d) is %#x, not the 0x47 sync byte", off, off/188, p[0])
		}
		pid := uint16(p[1]&0x1F)<<8 | uint16(p[2])
		afc := p[3] >> 4 & 3
		cc := p[3] & 0x0F
		if pid == 0x1FFF || afc&1 == 0 { // null packets, and packets without payload, keep their CC
			continue
		}
		discontinuity := afc&2 != 0 && p[4] > 0 && p[5]&0x80 != 0
		if prev, ok := last[pid]; ok && !discontinuity && cc != (prev+1)&0x0F {
			t.Fatalf("packet %d, PID %#x: continuity counter %d after %d", off/188, pid, cc, prev)
		}
		last[pid] = cc
	}
}

func TestDialFFmpegListener(t *testing.T) {
	port := hlstest.FreeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// At debug level ffmpeg logs the stream id its listener accepted: that checks our SID
	// encoding against libsrt's decoding.
	stderr := startFFmpeg(t, fmt.Sprintf("srt://%s?mode=listener&pkt_size=1316", addr), "debug")
	const sid = "#!::r=live/test,m=request" // 25 bytes: padding in the last word

	c := dialFFmpegListener(t, addr, Config{StreamID: sid})
	defer c.Close()
	if c.StreamID() != sid {
		t.Errorf("StreamID() = %q", c.StreamID())
	}
	data := readTS(t, c, 200<<10, 3*time.Second)
	st := c.Stats()
	t.Logf("read %d bytes; stats %+v", len(data), st)
	// The test stream runs at about 300 kbit/s: 3 s give some 110 KB.
	if len(data) < 64<<10 {
		t.Fatalf("only %d bytes in 3s", len(data))
	}
	checkTS(t, data)
	if st.Lost != 0 {
		t.Errorf("Lost = %d on loopback", st.Lost)
	}
	if st.ACKsSent == 0 {
		t.Error("no ACK sent")
	}
	if want := "accept streamid [" + sid + "]"; !strings.Contains(stderr.String(), want) {
		t.Errorf("ffmpeg did not log %q", want)
	}
}

func TestListenFFmpegCaller(t *testing.T) {
	l, err := Listen("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	startFFmpeg(t, fmt.Sprintf("srt://%s?streamid=cam1&pkt_size=1316", l.Addr()), "error")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer c.Close()
	if c.StreamID() != "cam1" {
		t.Errorf("StreamID() = %q, want cam1", c.StreamID())
	}
	data := readTS(t, c, 200<<10, 3*time.Second)
	st := c.Stats()
	t.Logf("read %d bytes; stats %+v", len(data), st)
	// The test stream runs at about 300 kbit/s: 3 s give some 110 KB.
	if len(data) < 64<<10 {
		t.Fatalf("only %d bytes in 3s", len(data))
	}
	checkTS(t, data)
	if st.Lost != 0 {
		t.Errorf("Lost = %d on loopback", st.Lost)
	}
}

// An encrypted listener must be refused with an error that says why.
func TestDialFFmpegEncrypted(t *testing.T) {
	port := hlstest.FreeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startFFmpeg(t, fmt.Sprintf("srt://%s?mode=listener&pkt_size=1316&passphrase=0123456789abcdef", addr), "error")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := Dial(context.Background(), addr, Config{HandshakeTimeout: 500 * time.Millisecond})
		if err == nil {
			c.Close()
			t.Fatal("Dial to an encrypted listener succeeded")
		}
		if errors.Is(err, ErrEncryptionUnsupported) {
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), "encryption") {
				t.Errorf("error %q does not mention encryption", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no encryption error, last: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lossyProxy relays UDP between a client and server, dropping the first transmission of
// every data packet from the server for which drop returns true.
func lossyProxy(t *testing.T, server string, drop func(seq uint32) bool) string {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var client *net.UDPAddr
	wg.Add(2)
	go func() { // client → server
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			mu.Lock()
			client = from
			mu.Unlock()
			_, _ = back.WriteToUDP(buf[:n], srv) // one that fails is lost, as UDP may lose it
		}
	}()
	go func() { // server → client, lossy
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := back.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if p, err := parsePacket(buf[:n]); err == nil && !p.control && !p.retransmitted && drop(p.seq) {
				continue
			}
			mu.Lock()
			to := client
			mu.Unlock()
			if to != nil {
				_, _ = front.WriteToUDP(buf[:n], to) // one that fails is lost, as UDP may lose it
			}
		}
	}()
	t.Cleanup(func() {
		front.Close()
		back.Close()
		wg.Wait()
	})
	return front.LocalAddr().String()
}

// With libsrt as the sender and losses on the way, our NAKs get the lost packets
// retransmitted in time: the stream arrives whole.
func TestDialFFmpegListenerWithLoss(t *testing.T) {
	port := hlstest.FreeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startFFmpeg(t, fmt.Sprintf("srt://%s?mode=listener&pkt_size=1316", addr), "error")
	proxy := lossyProxy(t, addr, func(seq uint32) bool { return seq%9 == 4 || seq%23 == 0 || seq%23 == 1 })
	c := dialFFmpegListener(t, proxy, Config{})
	defer c.Close()
	data := readTS(t, c, 200<<10, 3*time.Second)
	st := c.Stats()
	t.Logf("read %d bytes; stats %+v", len(data), st)
	if len(data) < 64<<10 {
		t.Fatalf("only %d bytes in 3s", len(data))
	}
	checkTS(t, data)
	if st.Lost != 0 || st.Retransmitted < 10 || st.NAKsSent < 10 {
		t.Errorf("stats %+v: want every loss repaired by retransmission", st)
	}
}

// dialFFmpegListener dials an ffmpeg SRT listener that may not listen yet (ffmpeg needs a
// moment): it retries within 10 s. ffmpeg's listener takes one caller: a handshake that the
// caller gives up on while ffmpeg answers it leaves ffmpeg writing to nobody until it
// fails, so each try has 2 s, enough on a machine loaded by the whole suite (500 ms was
// not: "Dial never succeeded" once ffmpeg had given up).
func dialFFmpegListener(t *testing.T, addr string, cfg Config) *Conn {
	t.Helper()
	cfg.HandshakeTimeout = 2 * time.Second
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := Dial(context.Background(), addr, cfg)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dial never succeeded: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // ffmpeg is starting: nothing to wait on but time
	}
}
