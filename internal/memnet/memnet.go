// Package memnet is an in-memory stand-in for a loopback TCP port: a net.Listener whose
// connections are net.Pipe pairs, and the dial function that reaches it.
//
// The benchmark (rawflow swarm) runs a thousand viewers' proxies and players in one
// process. A real player talks to its proxy over its own machine's loopback, which costs the
// swarm nothing; simulated over this machine's loopback TCP, those connections cost about a
// fifth of the benchmark's CPU (rawflow swarm --viewers 300 --duration 45s: 23.6 CPU-seconds
// over TCP, 18.9 in memory), CPU the proxies under test then lack. Over a pipe, a segment is copied once, from the proxy's write to the
// player's read, with no system call.
package memnet

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// Listener is an in-memory listener. Its zero value is not usable: see Listen.
type Listener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   *net.TCPAddr
	ports  atomic.Uint32 // the clients' made-up ports
}

// ports numbers the listeners' made-up addresses, so that two listeners' URLs differ.
var ports atomic.Uint32

// Listen returns a new in-memory listener. Its address is made up (127.0.0.1 and a port no
// other Listener of this process has), so that URLs and logs read as for a TCP port; only
// its Dial reaches it.
func Listen() *Listener {
	return &Listener{
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
		addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(ports.Add(1)%65535) + 1},
	}
}

// Accept waits for the next connection; after Close it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and further dials; connections already made stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the listener's made-up address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the listener, whatever network and address are asked for (an
// http.Transport's DialContext): it waits for Accept, ctx or Close.
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	from := &net.TCPAddr{IP: l.addr.IP, Port: int(l.ports.Add(1)%65535) + 1}
	select {
	case l.conns <- conn{Conn: server, local: l.addr, remote: from}:
		return conn{Conn: client, local: from, remote: l.addr}, nil
	case <-l.closed:
	case <-ctx.Done():
		_ = client.Close()
		_ = server.Close()
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.addr, Err: ctx.Err()}
	}
	_ = client.Close()
	_ = server.Close()
	return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.addr, Err: net.ErrClosed}
}

// conn is one end of a pipe, with TCP-like addresses.
type conn struct {
	net.Conn
	local, remote net.Addr
}

func (c conn) LocalAddr() net.Addr  { return c.local }
func (c conn) RemoteAddr() net.Addr { return c.remote }
