package peerlink

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// streams returns a connected pair of raw streams: a's end and b's end.
func streams(t *testing.T) (ac, bc net.Conn) {
	var r router
	a, b := r.newLink(t, "a", nil), r.newLink(t, "b", nil)
	ac, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	bc, err = b.Listener().Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ac.Close(); bc.Close() })
	return ac, bc
}

func TestStreamSmallReadsAndEOF(t *testing.T) {
	ac, bc := streams(t)
	msg := pattern(40 << 10) // more than one message
	if _, err := ac.Write(msg); err != nil {
		t.Fatal(err)
	}
	ac.Close()
	var got []byte
	one := make([]byte, 7)
	for {
		n, err := bc.Read(one)
		got = append(got, one[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, want the %d written", len(got), len(msg))
	}
	if _, err := ac.Write([]byte("x")); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestStreamDeadlines(t *testing.T) {
	ac, bc := streams(t)
	_ = bc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := bc.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("read deadline fired after %v", d)
	}
	// The deadline cleared, reads work again.
	_ = bc.SetReadDeadline(time.Time{})
	if _, err = ac.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err = io.ReadFull(bc, make([]byte, 2)); err != nil {
		t.Fatalf("read after clearing the deadline: %v", err)
	}

	// b stops reading: flow control blocks a's writer, and its deadline ends the write.
	_ = ac.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := ac.Write(make([]byte, 64<<20))
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write to a reader that stopped: n=%d err=%v, want a timeout", n, err)
	}
	if n >= 16<<20 {
		t.Errorf("wrote %d bytes into a stalled stream: flow control did not hold", n)
	}
}

// TestCloseAfterWriteDeliversAll: a writer that closes right after a large Write (as an
// HTTP server with "Connection: close" does) loses nothing; the close follows the data.
func TestCloseAfterWriteDeliversAll(t *testing.T) {
	ac, bc := streams(t)
	seg := pattern(3 << 20)
	errc := make(chan error, 1)
	go func() {
		_, err := bc.Write(seg)
		if cerr := bc.Close(); err == nil {
			err = cerr
		}
		errc <- err
	}()
	got, err := io.ReadAll(ac)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, seg) {
		t.Fatalf("read %d bytes before EOF, want the %d written", len(got), len(seg))
	}
}
