package peerassist

import (
	"context"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// blackhole returns a loopback address whose connects hang, as to a NAT that drops SYNs:
// a listener with a backlog of 0 that never accepts, its queue filled.
func blackhole(t *testing.T) string {
	t.Helper()
	addr := unaccepted(t)
	for range 8 { // the queue takes a connection or two; then SYNs are dropped
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Fatal("the listen queue never filled")
	return ""
}

// unaccepted returns a loopback address with a backlog of 0 that never accepts: its
// queue takes the first connect or two, and every later one hangs.
func unaccepted(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// TestBlackholedAddressIsNotAFailure: a source that takes WebRTC, whose advertised address
// takes no connection and sends no refusal either (a NAT dropping SYNs), is not held
// responsible: its path is probed (and its link tried), the segments come from the
// gateway, and no failure is counted against it (failures in a row get a neighbour
// reported, and reports from two sites ban it).
func TestBlackholedAddressIsNotAFailure(t *testing.T) {
	gw := newFakeGateway(6)
	gw.setSources(swarm.Source{ID: strings.Repeat("cd", 16), Addr: blackhole(t), ICE: true})
	p := startProxy(t, gw, nil)
	playAll(t, p, gw)
	st := p.Status()
	assert.Equal(t, int64(6), st.Channels["tv"].SegmentsFromGateway)
	assert.Zero(t, st.Channels["tv"].NeighbourFailures, "an address that drops connects is a NAT's, not the source's fault")
	// The probe's connect waits out probeWait before the link is tried.
	require.Eventually(t, func() bool { return gw.hitCount("signal") > 0 }, 3*probeWait, 20*time.Millisecond,
		"its path was probed and its link tried")
}

// TestSilentNeighbourIsAFailure: a source whose address takes the connection but never
// answers the handshake is busy or broken, not behind a NAT: its fetches fall back to the
// gateway and each failure counts (failures in a row get a neighbour reported). Taking it
// for a NAT would set up WebRTC links to every busy neighbour of a crowd's join.
func TestSilentNeighbourIsAFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() { // accept, then say nothing
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	gw := newFakeGateway(3)
	gw.setSources(swarm.Source{ID: strings.Repeat("ef", 16), Addr: ln.Addr().String(), ICE: true, Cert: strings.Repeat("00", 32)})
	p := startProxy(t, gw, nil)
	playAll(t, p, gw)
	st := p.Status()
	assert.Equal(t, int64(3), st.Channels["tv"].SegmentsFromGateway)
	assert.Positive(t, st.Channels["tv"].NeighbourFailures, "a neighbour that answers no handshake failed")
}

// TestConnectedAddressIsNotTakenForANAT: a source whose address took a connection is
// reachable over TCP; when a later connect hangs (it, or this proxy, is overloaded), that
// is a failure as any other: no probe, no WebRTC link. Taken for a NAT, every busy source
// of an overloaded crowd got a WebRTC set-up, thousands of them.
func TestConnectedAddressIsNotTakenForANAT(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	src := swarm.Source{ID: strings.Repeat("ab", 16), Addr: unaccepted(t), ICE: true}
	p.routes.note("tv", src)
	dial := (&net.Dialer{}).DialContext

	c, err := p.routes.dial(t.Context(), dial, peerHost(src.ID))
	require.NoError(t, err, "the queue takes the first connect")
	t.Cleanup(func() { _ = c.Close() })
	for range 4 { // fill the queue: from here on, connects hang
		if extra, derr := net.DialTimeout("tcp", src.Addr, 300*time.Millisecond); derr == nil {
			t.Cleanup(func() { _ = extra.Close() })
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = p.routes.dial(ctx, dial, peerHost(src.ID))
	require.Error(t, err)
	assert.NotErrorIs(t, err, errLinkPending, "a hanging connect to an address that took one is the source's failure")
	rt, _ := p.routes.get(src.ID)
	assert.Equal(t, pathDirect, rt.path)
	assert.False(t, rt.busy, "no probe queued")
}
