// Package tcpinfo reads what the kernel knows of a TCP connection's sending side: bytes
// the peer acknowledged, and bytes still queued (written by the application and not yet
// acknowledged). Linux only (TCP_INFO); elsewhere Read reports false.
package tcpinfo

import "net"

// Sender is a TCP connection's sending side at one moment.
type Sender struct {
	// Acked counts the bytes the peer has acknowledged since the connection opened.
	Acked uint64
	// Queued is what the application wrote that the peer has not acknowledged yet: bytes
	// not sent, and bytes in flight.
	Queued uint64
}

// Read returns c's sending side, if c is a TCP connection on a system that tells.
func Read(c net.Conn) (Sender, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return Sender{}, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return Sender{}, false
	}
	var s Sender
	ok = false
	if err := rc.Control(func(fd uintptr) { s, ok = read(fd) }); err != nil {
		return Sender{}, false
	}
	return s, ok
}

// LimitUnsent makes the kernel take no more of c's bytes while n or more it took are not
// sent yet (TCP_NOTSENT_LOWAT): the rest waits in the application, which may still choose
// what goes first, instead of in a send buffer of megabytes. It reports whether it could.
func LimitUnsent(c net.Conn, n int) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	if err := rc.Control(func(fd uintptr) { ok = limitUnsent(fd, n) }); err != nil {
		return false
	}
	return ok
}
