package gateway

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// paced returns the rate p paces segments at (0: not paced).
func paced(p *pacer) float64 {
	rate, _ := p.state()
	return rate
}

func newTestEstimator() (*uplinkEstimator, *pacer, *holdBack) {
	p := &pacer{now: time.Now}
	h := newHoldBack(8, 0)
	return newUplinkEstimator(p, h, slog.New(slog.NewTextHandler(io.Discard, nil))), p, h
}

// TestUplinkEstimate walks the estimator through a flash crowd: nothing is paced while the
// connections keep up, however fast; a saturated uplink is paced just below what it
// delivered at best, its hold-back limit set to that; a rate that holds transfers back
// while nothing queues is raised; when queues build again it drops back to the delivered
// rate; and once neither happens for idleFor, pacing stops.
func TestUplinkEstimate(t *testing.T) {
	u, p, h := newTestEstimator()
	now := time.Unix(1_800_000_000, 0)
	step := func(delivered, queued float64, backlogged int) {
		now = now.Add(uplinkSample)
		u.step(now, delivered, queued, backlogged)
	}
	const mb = 1 << 20
	for range 50 { // loopback: a lot delivered, short queues
		step(500*mb, 2*mb, 8)
	}
	for range 50 { // one slow reader holds a long queue: not the uplink
		step(1*mb, 10*mb, 1)
	}
	assert.Zero(t, paced(p), "keeping up: not paced")

	step(1.2*mb, 4*mb, 10)
	step(1.0*mb, 4*mb, 10)
	assert.Zero(t, paced(p), "not saturated for long enough yet")
	step(1.1*mb, 4*mb, 10)
	assert.InDelta(t, drainGain*1.2*mb, paced(p), 1, "paced below the best delivered")
	assert.InDelta(t, 1.2*mb, float64(h.limit.Load()), 1)

	// The queues drain; the pacer holds transfers back: probed up every probeEvery.
	rate := paced(p)
	for range int(probeEvery / uplinkSample) {
		p.mu.Lock()
		p.waited = now
		p.mu.Unlock()
		step(rate, 0, 0)
	}
	assert.InDelta(t, probeGain*rate, paced(p), 1, "raised once")

	// Queues build again: back below what the uplink delivers.
	for range saturatedSamples {
		step(1.0*mb, 4*mb, 10)
	}
	assert.InDelta(t, drainGain*rate, paced(p), 1, "the best of the window: what it delivered while probed")
	for range uplinkWindow {
		step(1.0*mb, 4*mb, 10)
	}
	assert.InDelta(t, drainGain*1.0*mb, paced(p), 1, "the window moved on")

	// Neither saturated nor holding anything back for idleFor: not paced.
	for range int(idleFor/uplinkSample) + 1 {
		step(0.5*mb, 0, 0)
	}
	assert.Zero(t, paced(p))
	assert.Zero(t, h.limit.Load())
}
