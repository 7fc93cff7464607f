package tracker

import (
	"sync"
	"time"
)

// Bans. A peer that peers on two different addresses of a channel reported (for bytes that do not match
// the gateway's digest, a redirect, or failing them several times in a row) — each of them
// a peer this gateway's plans sent to it, so that a report is evidence, not a claim; and
// identities on one address count as one reporter, since a client makes them for free — is
// removed from the swarm and refused as an uploader for bannedFor: it cannot rejoin as one
// under a new ID from the same address either, only as a leech.
const (
	reportsToBan  = 2
	bannedFor     = 10 * time.Minute
	maxReportedBy = 64   // reporters remembered per reported peer
	maxReported   = 4096 // reported peers remembered per gateway
)

// bans is what this gateway was told of peers sending bad bytes. It is local to the
// gateway: in a fleet, each gateway bans on the reports it receives.
type bans struct {
	mu     sync.Mutex                   // guards the following fields
	by     map[string]map[string]string // channel/reported id -> reporter -> its address
	banned map[string]time.Time         // channel/advertised address -> banned until
}

// report records that reporter, on address from, caught id (advertised at addr) in channel;
// it returns true when the report bans id: reporters on reportsToBan distinct addresses.
func (b *bans) report(channel, id, addr, reporter, from string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.by == nil || len(b.by) >= maxReported {
		b.by = map[string]map[string]string{}
	}
	if b.banned == nil || len(b.banned) >= maxReported {
		b.banned = map[string]time.Time{}
	}
	key := channel + "/" + id
	if b.by[key] == nil {
		b.by[key] = map[string]string{}
	}
	if len(b.by[key]) < maxReportedBy {
		b.by[key][reporter] = from
	}
	addrs := map[string]bool{}
	for _, a := range b.by[key] {
		addrs[a] = true
	}
	if len(addrs) < reportsToBan || addr == "" {
		return false
	}
	b.banned[channel+"/"+addr] = now.Add(bannedFor)
	return true
}

// isBanned reports whether a peer advertising addr is refused as an uploader in channel.
func (b *bans) isBanned(channel, addr string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.banned[channel+"/"+addr]
	return ok && now.Before(until)
}
