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
// with what it found (Subscription.NAT); the tracker plans such a proxy, unless neighbours
// can dial its address (a port mapping), with its own site's peers only. The first time, the
// stream waits for the answer (firstNATWait at most) before it takes the hello's plan, and a
// symmetric answer ends it for a new one at once; a later answer that moves the proxy
// between cells (natMoves) resubscribes when it comes. The test runs again when the
// gateway's ports change, natRetry after a test that got no answer (which keeps the last
// answer from the same ports), and every natRetest (a laptop moves between networks).
const (
	natRetry  = time.Minute
	natRetest = 30 * time.Minute
	// firstNATWait bounds how long a first hello's plan waits for the NAT's answer: one
	// round trip to the gateway, unless its STUN is lost or overloaded (a thousand proxies
	// joining at once), and then the plan is taken and the answer acted on when it comes.
	firstNATWait = 300 * time.Millisecond
)

// natProbe holds the proxy's last answer and when to ask again.
type natProbe struct {
	wake chan struct{} // a Hello announced ports (buffered, 1)

	mu        sync.Mutex // guards the following fields
	host      string     // the gateway host and ports to ask
	port, alt int
	tested    string        // the host and ports the answer is for
	nat       string        // swarm.NATCone, swarm.NATSymmetric, or "" (not known)
	next      time.Time     // when to test again
	done      chan struct{} // closed (and replaced) when a test ends
}

func newNATProbe() natProbe {
	return natProbe{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// key names the ports a test asks (n.mu held).
func (n *natProbe) key() string { return fmt.Sprintf("%s %d %d", n.host, n.port, n.alt) }

// announce records the STUN ports a Hello announced and wakes the test; it reports whether
// the NAT was never tested with them.
func (n *natProbe) announce(host string, h swarm.Hello) bool {
	if h.STUNPort <= 0 || h.STUNPort > 65535 || h.STUNAltPort <= 0 || h.STUNAltPort > 65535 {
		return false
	}
	n.mu.Lock()
	n.host, n.port, n.alt = host, h.STUNPort, h.STUNAltPort
	untested := n.key() != n.tested
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return untested
}

// get returns the last answer ("" when not known).
func (n *natProbe) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nat
}

// await waits until the NAT was tested with the announced ports, for wait at most, and
// returns the last answer.
func (n *natProbe) await(ctx context.Context, wait time.Duration) string {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		n.mu.Lock()
		nat, done, tested := n.nat, n.done, n.host == "" || n.key() == n.tested
		n.mu.Unlock()
		if tested {
			return nat
		}
		select {
		case <-done:
		case <-timer.C:
			return nat
		case <-ctx.Done():
			return nat
		}
	}
}

// check tests the NAT with the announced ports when it is due — never tested with them,
// or its time has come — and reports whether the answer moved the proxy between cells
// (natMoves).
func (n *natProbe) check(ctx context.Context, now func() time.Time) bool {
	n.mu.Lock()
	host, port, alt, key := n.host, n.port, n.alt, n.key()
	due := key != n.tested || !now().Before(n.next)
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
	close(n.done)
	n.done = make(chan struct{})
	return natMoves(was, n.nat)
}

// run checks the NAT whenever ports are announced or the answer is due, until ctx ends;
// changed, if set, is called when an answer moves the proxy between cells.
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
		if n.check(ctx, now) && changed != nil {
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
