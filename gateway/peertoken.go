package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Peer tokens authenticate tracker calls. Every announce returns a token for the peer's ID
// in that channel, EXPIRY-SIGNATURE with SIGNATURE the first 32 hex digits of
// HMAC-SHA256(PeerKey, "peer:CHANNEL:ID:EXPIRY"); have, lookup, leave and later announces
// must carry it. So a peer ID cannot be used (its holdings claimed, its registration
// refreshed or removed) by anyone but the peer the gateway issued it to. Gateways of a fleet
// share PeerKey; a gateway with a key of its own (the default: random at start) makes
// every peer announce afresh after a restart, with a new ID.

// PeerTokenTTL is how long a peer token is valid; peers announce far more often.
const PeerTokenTTL = 10 * time.Minute

func peerToken(key []byte, channel, id string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "-" + peerSignature(key, channel, id, exp)
}

func peerSignature(key []byte, channel, id, exp string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("peer:" + channel + ":" + id + ":" + exp))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// checkPeerToken verifies that token was issued to peer id of channel and is not expired.
func checkPeerToken(key []byte, channel, id, token string, now time.Time) error {
	exp, sig, ok := strings.Cut(token, "-")
	secs, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(sig), []byte(peerSignature(key, channel, id, exp))) {
		return swarm.ErrUnauthorized
	}
	if now.Unix() > secs {
		return swarm.ErrUnauthorized
	}
	return nil
}

// Reports. A peer that two different peers of a channel reported (for bytes that do not
// match the gateway's digest, a redirect, or failing them several times in a row) is
// removed from the swarm and refused as an uploader for bannedFor: it can no longer be
// handed out as a holder, nor rejoin under a new ID from the same address, except as a
// leech.
const (
	reportsToBan  = 2
	bannedFor     = 10 * time.Minute
	maxReportedBy = 64   // reporters remembered per reported peer
	maxReported   = 4096 // reported peers remembered per gateway
)

// reports is what this gateway was told of peers sending bad bytes. It is local to the
// gateway: in a fleet, each gateway bans on the reports it receives.
type reports struct {
	mu     sync.Mutex                 // guards the following fields
	by     map[string]map[string]bool // channel/reported id -> reporters
	banned map[string]time.Time       // channel/advertised address -> banned until
}

// report records that reporter caught id (advertised at addr) in channel; it returns true
// when the report bans id.
func (r *reports) report(channel, id, addr, reporter string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil || len(r.by) >= maxReported {
		r.by = map[string]map[string]bool{}
	}
	if r.banned == nil || len(r.banned) >= maxReported {
		r.banned = map[string]time.Time{}
	}
	key := channel + "/" + id
	if r.by[key] == nil {
		r.by[key] = map[string]bool{}
	}
	if len(r.by[key]) < maxReportedBy {
		r.by[key][reporter] = true
	}
	if len(r.by[key]) < reportsToBan || addr == "" {
		return false
	}
	r.banned[channel+"/"+addr] = now.Add(bannedFor)
	return true
}

// isBanned reports whether a peer advertising addr is refused in channel at now.
func (r *reports) isBanned(channel, addr string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.banned[channel+"/"+addr]
	return ok && now.Before(until)
}
