package peerlink

import (
	"io"
	"net"
	"testing"
	"time"
)

// transfer writes size bytes on w and reads them on r, returning how long it took.
func transfer(tb testing.TB, w, r net.Conn, buf []byte) time.Duration {
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(buf)
		errc <- err
	}()
	if _, err := io.ReadFull(r, make([]byte, len(buf))); err != nil {
		tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkTransfer moves a 2 MiB segment over a peerlink stream and over a loopback TCP
// connection in the same run, and reports both throughputs and their ratio.
func BenchmarkTransfer(b *testing.B) {
	var r router
	la, lb := r.newLink(b, "a", nil), r.newLink(b, "b", nil)
	sa, err := la.Dial(b.Context(), "b")
	if err != nil {
		b.Fatal(err)
	}
	defer sa.Close()
	sb, err := lb.Listener().Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	ta, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer ta.Close()
	tb := <-accepted
	if tb == nil {
		b.Fatal("tcp accept failed")
	}
	defer tb.Close()

	seg := pattern(2 << 20)
	var overLink, overTCP time.Duration
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		overLink += transfer(b, sb, sa, seg)
		overTCP += transfer(b, tb, ta, seg)
	}
	mb := float64(b.N) * float64(len(seg)) / 1e6
	b.ReportMetric(mb/overLink.Seconds(), "link-MB/s")
	b.ReportMetric(mb/overTCP.Seconds(), "tcp-MB/s")
	b.ReportMetric(overTCP.Seconds()/overLink.Seconds(), "link/tcp")
}
