package peerlink

import (
	"net"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// maxStreamsPerPeer bounds the open streams on one peer connection; a data channel
// past it is closed at once.
const maxStreamsPerPeer = 256

// waiter is a Dial waiting for its data channel to open.
type waiter struct {
	dc    *webrtc.DataChannel
	ready chan struct{} // closed once c is set

	mu        sync.Mutex // guards the following fields
	c         *conn
	abandoned bool
}

// openStream creates a data channel; the waiter's ready closes when it is open.
func (p *peer) openStream() (*waiter, error) {
	dc, err := p.pc.CreateDataChannel("s", nil)
	if err != nil {
		return nil, err
	}
	w := &waiter{dc: dc, ready: make(chan struct{})}
	dc.OnOpen(func() {
		c := p.attach(dc)
		if c == nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.abandoned {
			c.Close()
			return
		}
		w.c = c
		close(w.ready)
	})
	return w, nil
}

// abandon closes the stream of a Dial that gave up, now or once it opens.
func (w *waiter) abandon() {
	w.mu.Lock()
	w.abandoned = true
	c := w.c
	w.mu.Unlock()
	if c != nil {
		c.Close()
		return
	}
	_ = w.dc.Close()
}

// attach detaches an open data channel and wraps it as a conn, or closes it when the
// peer is closing or has maxStreamsPerPeer streams.
func (p *peer) attach(dc *webrtc.DataChannel) *conn {
	raw, err := dc.Detach()
	if err != nil {
		_ = dc.Close()
		return nil
	}
	p.mu.Lock()
	if p.closed || p.conns >= maxStreamsPerPeer {
		p.mu.Unlock()
		_ = raw.Close()
		return nil
	}
	p.conns++
	p.link.connsWG.Add(1) // under p.mu while !closed, so before Close waits
	p.mu.Unlock()
	c := newConn(p, raw, dc)
	go func() {
		defer p.link.connsWG.Done()
		c.readLoop()
	}()
	return c
}

// connClosed counts a stream's end; the idle clock starts when none is left.
func (p *peer) connClosed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns--; p.conns == 0 {
		p.idleFrom = time.Now()
	}
}

// listener hands out inbound streams.
type listener struct {
	l    *Link
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (ln *listener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.ch:
		return c, nil
	case <-ln.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; streams already accepted stay open until the Link closes.
func (ln *listener) Close() error {
	ln.once.Do(func() { close(ln.done) })
	return nil
}

func (ln *listener) Addr() net.Addr { return Addr("local") }

// offer queues an inbound stream for Accept, or closes it when the queue is full.
func (ln *listener) offer(c net.Conn) {
	select {
	case <-ln.done:
		c.Close()
	case ln.ch <- c:
	default:
		ln.l.stats.dropped.Add(1)
		c.Close()
	}
}
