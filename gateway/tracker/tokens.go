package tracker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Peer tokens authenticate a peer's calls. The hello event of a peer's first event stream
// gives it a token for its ID in that channel, EXPIRY-SIGNATURE with SIGNATURE the first 32
// hex digits of HMAC-SHA256(PeerKey, "peer:CHANNEL:ID:EXPIRY"); its reports, and a stream
// that resumes it, must carry one, and token events bring fresh ones while its stream is
// open. So a peer ID cannot be used (its slots kept, its counters reported, its membership
// ended) by anyone but the peer it was issued to. Gateways of a fleet share PeerKey; a
// gateway with a key of its own (the default: random at start) makes every peer join
// afresh after a restart, with a new ID.

// TokenTTL is how long a peer token is valid; a stream brings a fresh one every half of it.
const TokenTTL = 10 * time.Minute

// Token returns a peer token for peer id of channel, valid until expires.
func Token(key []byte, channel, id string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "-" + signature(key, channel, id, exp)
}

func signature(key []byte, channel, id, exp string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("peer:" + channel + ":" + id + ":" + exp))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// checkToken verifies that token was issued to peer id of channel and is not expired.
func checkToken(key []byte, channel, id, token string, now time.Time) error {
	exp, sig, ok := strings.Cut(token, "-")
	secs, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(sig), []byte(signature(key, channel, id, exp))) {
		return swarm.ErrUnauthorized
	}
	if now.Unix() > secs {
		return swarm.ErrUnauthorized
	}
	return nil
}

// newPeerID returns a fresh random peer ID: 32 lower-case hex characters.
func newPeerID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
