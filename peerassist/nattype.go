package peerassist

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rawflow/rawflow/peerlink"
	"github.com/rawflow/rawflow/swarm"
)

// The NAT's mapping. A proxy behind a symmetric NAT (a public port per destination) cannot
// be reached over WebRTC from behind another NAT, nor reach a peer there, without TURN: a
// plan that makes it a parent or a child of other sites' peers costs both sides failed
// set-ups and gateway fetches. When the gateway answers STUN on two ports (Hello.STUNPort,
// STUNAltPort), the proxy asks both from one socket (peerlink.SymmetricNAT) and subscribes
// with what it found (Subscription.NAT): the first time, before it takes the first plan
// (one stream ends at its hello, a round trip later the next begins); the tracker plans such a proxy,
// unless neighbours can dial its address (a port mapping), with its own site's peers only.
// The test runs again when the gateway's ports change, natRetry after a test that got no
// answer (which keeps the last answer from the same ports), and every natRetest (a laptop
// moves between networks).
const (
	natRetry  = time.Minute
	natRetest = 30 * time.Minute
)

// natProbe holds the proxy's last answer and when to ask again.
type natProbe struct {
	wake    chan struct{} // a Hello announced ports (buffered, 1)
	testing sync.Mutex    // one test at a time

	mu        sync.Mutex // guards the following fields
	host      string     // the gateway host and ports to ask
	port, alt int
	tested    string // the host and ports the answer is for
	nat       string // swarm.NATCone, swarm.NATSymmetric, or "" (not known)
	next      time.Time
}

// announce records the STUN ports a Hello announced and wakes the test when they are new.
func (n *natProbe) announce(host string, h swarm.Hello) {
	if h.STUNPort <= 0 || h.STUNPort > 65535 || h.STUNAltPort <= 0 || h.STUNAltPort > 65535 {
		return
	}
	n.mu.Lock()
	n.host, n.port, n.alt = host, h.STUNPort, h.STUNAltPort
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// get returns the last answer ("" when not known).
func (n *natProbe) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nat
}

// check tests the NAT with the announced ports when it is due — never tested with these
// ports, or (unless first) its time has come — and reports whether the answer changed
// between symmetric and not (natMoves). A
// check that finds another under way waits for it.
func (n *natProbe) check(ctx context.Context, now func() time.Time, first bool) bool {
	n.testing.Lock()
	defer n.testing.Unlock()
	n.mu.Lock()
	host, port, alt := n.host, n.port, n.alt
	key := fmt.Sprintf("%s %d %d", host, port, alt)
	due := key != n.tested || !first && !now().Before(n.next)
	n.mu.Unlock()
	if host == "" || !due {
		return false
	}
	symmetric, err := peerlink.SymmetricNAT(ctx, host, port, alt)
	if ctx.Err() != nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	was := n.nat
	switch {
	case err != nil && key != n.tested: // another gateway's ports: the last answer is not theirs
		n.nat, n.next = "", now().Add(natRetry)
	case err != nil: // keep the last answer, ask again sooner
		n.next = now().Add(natRetry)
	case symmetric:
		n.nat, n.next = swarm.NATSymmetric, now().Add(natRetest)
	default:
		n.nat, n.next = swarm.NATCone, now().Add(natRetest)
	}
	n.tested = key
	return natMoves(was, n.nat)
}

// run checks the NAT whenever ports are announced or the answer is due, until ctx ends;
// changed, if set, is called when the answer changes.
func (n *natProbe) run(ctx context.Context, now func() time.Time, changed func()) {
	timer := time.NewTimer(natRetest)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-timer.C:
		}
		if n.check(ctx, now, false) && changed != nil {
			changed()
		}
		n.mu.Lock()
		wait := n.next.Sub(now())
		n.mu.Unlock()
		timer.Reset(max(wait, time.Second))
	}
}

// natMoves reports whether subscribing with nat instead of subscribed would move the proxy
// between cells: only a symmetric NAT does (the tracker plans "cone" and "" alike), so a
// proxy behind a cone NAT does not subscribe again for its answer.
func natMoves(subscribed, nat string) bool {
	return (subscribed == swarm.NATSymmetric) != (nat == swarm.NATSymmetric)
}
