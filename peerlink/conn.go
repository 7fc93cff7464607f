package peerlink

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
)

const (
	// maxMessage is the largest data-channel message a conn writes; larger writes are chunked.
	maxMessage = 16 << 10
	// readBufSize is the largest message a conn accepts from the remote (the SCTP default
	// maximum message size); a larger one ends the conn.
	readBufSize = 64 << 10
	// highWater is the channel's buffered amount above which a writer waits; it resumes
	// when the amount falls to lowWater.
	highWater = 1 << 20
	lowWater  = 256 << 10
	// readQueue is how many received messages a conn holds before its reader stops
	// reading (SCTP's receive window then pushes back on the sender).
	readQueue = 16
)

// errClosed is returned by Read and Write on a conn closed locally.
var errClosed = net.ErrClosed

// Addr is the address of one end of a peerlink stream: the remote key the caller chose
// (Dial's `to`, HandleSignal's `from`), or "local".
type Addr string

// Network returns "peerlink".
func (Addr) Network() string { return "peerlink" }

// String returns the key.
func (a Addr) String() string { return string(a) }

// flowControl is the part of a data channel that tells how much it has queued to send.
type flowControl interface {
	BufferedAmount() uint64
	SetBufferedAmountLowThreshold(th uint64)
	OnBufferedAmountLow(f func())
}

// conn is one detached data channel seen as a byte stream.
type conn struct {
	dc    datachannel.ReadWriteCloser
	fc    flowControl
	peer  *peer
	msgs  chan []byte   // whole messages from the reader goroutine; closed at the remote's EOF
	low   chan struct{} // signalled when the channel's buffered amount falls to lowWater
	done  chan struct{} // closed by Close
	once  sync.Once
	rd    deadline
	wd    deadline
	rerr  atomic.Pointer[error] // why msgs was closed, if not a clean EOF
	rmu   sync.Mutex            // guards cur (one Read at a time)
	cur   []byte
	wmu   sync.Mutex // serialises Writes so chunks of two Writes never interleave
	stats *typeCounters
}

func newConn(p *peer, dc datachannel.ReadWriteCloser, fc flowControl) *conn {
	c := &conn{
		dc:    dc,
		fc:    fc,
		peer:  p,
		msgs:  make(chan []byte, readQueue),
		low:   make(chan struct{}, 1),
		done:  make(chan struct{}),
		rd:    newDeadline(),
		wd:    newDeadline(),
		stats: p.link.stats.byType(p.connType()),
	}
	fc.SetBufferedAmountLowThreshold(lowWater)
	fc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	return c
}

// readLoop moves whole messages from the channel to c.msgs until the channel ends.
// It ends when the remote closes the stream, c is closed, or the peer connection closes.
func (c *conn) readLoop() {
	defer close(c.msgs)
	buf := make([]byte, readBufSize)
	for {
		n, err := c.dc.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.rerr.Store(&err)
			}
			return
		}
		if n == 0 {
			continue
		}
		msg := make([]byte, n)
		copy(msg, buf[:n])
		select {
		case c.msgs <- msg:
		case <-c.done:
			return
		}
	}
}

// Read reads from the current message, or waits for the next one.
func (c *conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.cur) == 0 {
		select {
		case <-c.done:
			return 0, errClosed
		default:
		}
		select {
		case msg, ok := <-c.msgs:
			if !ok {
				if p := c.rerr.Load(); p != nil {
					select {
					case <-c.done:
						return 0, errClosed
					default:
					}
					return 0, *p
				}
				return 0, io.EOF
			}
			c.cur = msg
		case <-c.done:
			return 0, errClosed
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(b, c.cur)
	c.cur = c.cur[n:]
	c.stats.received.Add(uint64(n))
	return n, nil
}

// Write sends b in messages of at most maxMessage bytes, waiting while the channel has
// more than highWater bytes queued.
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(b) > 0 {
		for c.fc.BufferedAmount() > highWater {
			select {
			case <-c.low:
			case <-c.done:
				return written, errClosed
			case <-c.wd.wait():
				return written, os.ErrDeadlineExceeded
			}
		}
		select {
		case <-c.done:
			return written, errClosed
		case <-c.wd.wait():
			return written, os.ErrDeadlineExceeded
		default:
		}
		chunk := b[:min(len(b), maxMessage)]
		n, err := c.dc.Write(chunk)
		written += n
		c.stats.sent.Add(uint64(n))
		if err != nil {
			return written, err
		}
		b = b[len(chunk):]
	}
	return written, nil
}

// Close closes the data channel; the remote's Read then returns io.EOF.
func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		c.rd.stop()
		c.wd.stop()
		err = c.dc.Close()
		c.peer.connClosed()
	})
	return err
}

func (c *conn) LocalAddr() net.Addr  { return Addr("local") }
func (c *conn) RemoteAddr() net.Addr { return Addr(c.peer.remote) }

func (c *conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a settable point in time whose passing closes a channel (as in net.Pipe).
type deadline struct {
	mu      *sync.Mutex // guards the following fields
	timer   *time.Timer
	expired chan struct{}
}

func newDeadline() deadline {
	return deadline{mu: new(sync.Mutex), expired: make(chan struct{})}
}

// set arms the deadline at t; the zero time disarms it, a past time fires it now.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired (and closed expired): wait for nothing, it is closed
	}
	d.timer = nil
	closed := isClosed(d.expired)
	if t.IsZero() {
		if closed {
			d.expired = make(chan struct{})
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !closed {
			close(d.expired)
		}
		return
	}
	if closed {
		d.expired = make(chan struct{})
	}
	ch := d.expired
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

// wait returns a channel closed once the deadline has passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// stop disarms the timer so nothing outlives the conn.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
