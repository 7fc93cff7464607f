package peerassist

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Uplink self-assessment: a proxy whose uploads keep missing their deadline (the neighbour
// gave up before the last byte, or the upload took longer than uploadDeadline) serves its
// neighbours badly, so it stops advertising itself for quietFor: it announces as a leech
// (never handed out, never elected) and sends no "have". Then it tries again from scratch;
// each spell lasts twice the last, up to maxQuiet, give or take a quarter (quietJitter):
// proxies that went quiet together in a crowd's join must not come back together, each
// return re-planning its cells (in one 1,000-viewer run, 27 proxies of one process came back
// within a second at 65 s, and the new neighbour connections that followed swamped the
// machine).
const (
	uplinkWindow = 10 // the uploads judged
	uplinkMin    = 5  // fewest uploads judged before any verdict
	quietFor     = 60 * time.Second
	maxQuiet     = 16 * quietFor
	quietJitter  = 0.25 // a spell is its length times 1 ± this, at random
)

type uplink struct {
	mu         sync.Mutex // guards the following fields
	missed     [uplinkWindow]bool
	n, next    int
	quietUntil time.Time
	quietTimes int // how many times the proxy went quiet
}

// record judges one upload at now; it reports whether the proxy just went quiet.
func (u *uplink) record(missed bool, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.missed[u.next] = missed
	u.next = (u.next + 1) % uplinkWindow
	u.n = min(u.n+1, uplinkWindow)
	bad := 0
	for _, m := range u.missed[:u.n] {
		if m {
			bad++
		}
	}
	if u.n < uplinkMin || 2*bad < u.n || now.Before(u.quietUntil) {
		return false
	}
	spell := min(maxQuiet, quietFor<<min(u.quietTimes, 4))
	u.quietUntil = now.Add(time.Duration(float64(spell) * (1 - quietJitter + 2*quietJitter*rand.Float64())))
	u.quietTimes++
	u.n, u.next = 0, 0
	return true
}

// advertising reports whether the proxy offers uploads at now.
func (u *uplink) advertising(now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return !now.Before(u.quietUntil)
}

func (u *uplink) quiets() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.quietTimes
}

// silence stops offering uploads until until (the gateway banned this proxy's address).
func (u *uplink) silence(until time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if until.After(u.quietUntil) {
		u.quietUntil = until
		u.quietTimes++
	}
}
