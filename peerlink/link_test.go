package peerlink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// router wires Links' Send to each other's HandleSignal, as the gateway does.
type router struct {
	mu    sync.Mutex
	links map[string]*Link
	drop  func(to string, s Signal) bool // nil: deliver everything
}

func (r *router) send(from string) func(context.Context, string, Signal) error {
	return func(_ context.Context, to string, s Signal) error {
		r.mu.Lock()
		dst, drop := r.links[to], r.drop
		r.mu.Unlock()
		if (drop != nil && drop(to, s)) || dst == nil {
			return nil // lost on the way, like a gateway that forwards to nobody
		}
		_ = dst.HandleSignal(from, s)
		return nil
	}
}

// newLink starts a Link named name on r, closed when the test ends.
func (r *router) newLink(t testing.TB, name string, edit func(*Config)) *Link {
	t.Helper()
	cfg := Config{
		Send: r.send(name), IncludeLoopback: true, HandshakeTimeout: 5 * time.Second,
		// Only 127.0.0.1: an unsignalled link-local IPv6 address would make a prflx pair.
		IPFilter: net.IP.IsLoopback,
	}
	if edit != nil {
		edit(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	if r.links == nil {
		r.links = make(map[string]*Link)
	}
	r.links[name] = l
	r.mu.Unlock()
	t.Cleanup(func() { l.Close() })
	return l
}

// pattern returns n bytes that differ from offset to offset.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// serveHTTP serves h on l's Listener until the test ends.
func serveHTTP(t testing.TB, l *Link, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l.Listener())
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// client returns an HTTP client whose connections are streams Dialed from l to "b";
// dials counts them.
func client(t testing.TB, l *Link, dials *atomic.Int64) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := l.Dial(ctx, "b")
			if err == nil && dials != nil {
				dials.Add(1)
			}
			return c, err
		},
		MaxIdleConnsPerHost: 16,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func get(t testing.TB, c *http.Client, url string) []byte {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestHTTPOverStreams(t *testing.T) {
	var r router
	a, b := r.newLink(t, "a", nil), r.newLink(t, "b", nil)
	big := pattern(2 << 20)
	var remote atomic.Value
	serveHTTP(t, b, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		remote.Store(req.RemoteAddr)
		_, _ = w.Write(big)
	}))
	var dials atomic.Int64
	c := client(t, a, &dials)

	for i := range 10 {
		if got := get(t, c, "http://b/seg.ts"); !bytes.Equal(got, big) {
			t.Fatalf("request %d: got %d bytes, not the 2 MiB served", i, len(got))
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("keep-alive: %d streams dialed for 10 sequential requests, want 1", n)
	}
	if got := remote.Load(); got != "a" {
		t.Errorf("server saw RemoteAddr %v, want the signalling key %q", got, "a")
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.Peers != 1 || sa.PeersUp[TypeHost] != 1 || sa.Connected != 1 {
		t.Errorf("dialer stats: %+v, want one host peer connection", sa)
	}
	if sb.Peers != 1 || sb.PeersUp[TypeHost] != 1 {
		t.Errorf("answerer stats: %+v, want one host peer connection", sb)
	}
	if sb.BytesSent[TypeHost] < 10*uint64(len(big)) || sa.BytesReceived[TypeHost] < 10*uint64(len(big)) {
		t.Errorf("bytes by type: sent %v received %v", sb.BytesSent, sa.BytesReceived)
	}
	if sa.ConnectLastMs <= 0 || sa.ConnectHist == nil {
		t.Errorf("connect time not recorded: %+v", sa)
	}

	// A second stream on the same peer connection, without signalling.
	conn, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if got := ConnType(conn); got != TypeHost {
		t.Errorf("ConnType on loopback = %q, want host", got)
	}
	conn.Close()
	if a.Stats().Peers != 1 {
		t.Errorf("a second Dial made another peer connection")
	}
	tcp, _ := net.Pipe()
	defer tcp.Close()
	if got := ConnType(tcp); got != "" {
		t.Errorf("ConnType(non-peerlink) = %q", got)
	}
}

func TestConcurrentRequests(t *testing.T) {
	var r router
	a, b := r.newLink(t, "a", nil), r.newLink(t, "b", nil)
	body := pattern(256 << 10)
	serveHTTP(t, b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	}))
	c := client(t, a, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			resp, err := c.Get("http://b/x")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err == nil && !bytes.Equal(got, body) {
				err = errors.New("body differs")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := a.Stats().Peers; n != 1 {
		t.Errorf("%d peer connections for 8 parallel requests, want 1", n)
	}
}

func TestDialFailures(t *testing.T) {
	t.Run("no answer", func(t *testing.T) {
		r := router{drop: func(string, Signal) bool { return true }}
		a := r.newLink(t, "a", func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
		r.newLink(t, "b", nil)
		start := time.Now()
		_, err := a.Dial(t.Context(), "b")
		if !errors.Is(err, ErrHandshake) {
			t.Fatalf("Dial with no answer: %v, want ErrHandshake", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Dial took %v", d)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := a.Dial(ctx, "b"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial with short ctx: %v", err)
		}
	})
	t.Run("send fails", func(t *testing.T) {
		var r router
		unreachable := errors.New("gateway unreachable")
		a, err := New(Config{
			Send:            func(context.Context, string, Signal) error { return unreachable },
			IncludeLoopback: true, IPFilter: net.IP.IsLoopback,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		r.newLink(t, "b", nil)
		start := time.Now()
		if _, err := a.Dial(t.Context(), "b"); !errors.Is(err, ErrHandshake) || !errors.Is(err, unreachable) {
			t.Errorf("Dial when Send fails: %v, want ErrHandshake wrapping Send's error", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Dial took %v to report a failed Send", d)
		}
	})
	t.Run("max peers", func(t *testing.T) {
		var r router
		a := r.newLink(t, "a", func(c *Config) { c.MaxPeers = 1 })
		r.newLink(t, "b", nil)
		r.newLink(t, "c", nil)
		c, err := a.Dial(t.Context(), "b")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := a.Dial(t.Context(), "c"); !errors.Is(err, ErrTooManyPeers) {
			t.Errorf("Dial past MaxPeers: %v", err)
		}
		if a.Stats().Refused != 1 {
			t.Errorf("refused not counted: %+v", a.Stats())
		}
	})
	t.Run("closed", func(t *testing.T) {
		var r router
		a := r.newLink(t, "a", nil)
		a.Close()
		if _, err := a.Dial(t.Context(), "b"); !errors.Is(err, ErrClosed) {
			t.Errorf("Dial after Close: %v", err)
		}
		if _, err := a.Listener().Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	})
}

func TestIdlePeerConnectionCloses(t *testing.T) {
	var r router
	a := r.newLink(t, "a", func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	b := r.newLink(t, "b", nil)
	c, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = b.Listener().Accept(); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	p := a.out["b"]
	a.mu.Unlock()
	c.Close()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("idle peer connection still open")
	}
	if s := a.Stats(); s.Peers != 0 {
		t.Errorf("after idle close: %+v", s)
	}

	// The next Dial makes a new peer connection; closing the remote Link ends its stream.
	c, err = a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := a.Stats().Connected; n != 2 {
		t.Errorf("%d peer connections made, want 2", n)
	}
	b.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from a closed remote: %v, want the stream to end", err)
	}
}
