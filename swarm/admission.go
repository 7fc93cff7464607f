package swarm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Admission to neighbour ports. A proxy's neighbour port (over TCP, or over a WebRTC link)
// serves only proxies the gateway admitted to the channel. The hello and every token event
// give a peer the channel's swarm keys (ChannelKey) for the credential window of the moment
// and the next, derived from the gateway's peer key, so that gateways of a fleet give the
// same ones. Each neighbour request proves, in NeighbourAuthHeader, that its sender holds
// the key: "CHANNEL WINDOW UNIX MAC", UNIX the sender's time in seconds (on the gateway's
// clock: hello and token events carry it, so viewers' clocks do not matter) and MAC the hex
// HMAC-SHA256, under WINDOW's key, of "CHANNEL WINDOW UNIX PATH". The neighbour checks it
// with its own copy of the key, without asking the gateway. A program that never joined
// the channel has no key: it is refused (401 without a credential, 403 with a wrong or
// stale one); one that stopped getting keys (it left) is refused at most two windows later.
const (
	// NeighbourAuthHeader is the neighbour request header that proves admission.
	NeighbourAuthHeader = "RawFlow-Swarm"
	// CredentialWindow is the span of one swarm key.
	CredentialWindow = 5 * time.Minute
	// CredentialSkew is how far a request's time may be from its neighbour's (both on the
	// gateway's clock, as each last heard it): a captured request replays no longer.
	CredentialSkew = 30 * time.Second
	// MaxSwarmKeys bounds the keys an event carries.
	MaxSwarmKeys = 2
)

// ChannelKey is a channel's swarm key for one credential window.
type ChannelKey struct {
	// Window is the credential window: Unix seconds / CredentialWindow.
	Window int64 `json:"window"`
	// Key is the key, 64 hex digits.
	Key string `json:"key"`
}

// WindowOf returns the credential window of t.
func WindowOf(t time.Time) int64 { return t.Unix() / int64(CredentialWindow/time.Second) }

// ChannelKeys returns the channel's swarm keys of now's window and the next, derived from
// the gateway's peer key: HMAC-SHA256(peerKey, "swarm:CHANNEL:WINDOW").
func ChannelKeys(peerKey []byte, channel string, now time.Time) []ChannelKey {
	w := WindowOf(now)
	return []ChannelKey{swarmKey(peerKey, channel, w), swarmKey(peerKey, channel, w+1)}
}

func swarmKey(peerKey []byte, channel string, window int64) ChannelKey {
	m := hmac.New(sha256.New, peerKey)
	m.Write([]byte("swarm:" + channel + ":" + strconv.FormatInt(window, 10)))
	return ChannelKey{Window: window, Key: hex.EncodeToString(m.Sum(nil))}
}

// ValidChannelKey reports whether k has the form the gateway issues.
func ValidChannelKey(k ChannelKey) bool { return k.Window > 0 && ValidDigest(k.Key) }

// credentialWindows returns the windows a request made at now may use: now's, then those
// within CredentialSkew of it.
func credentialWindows(now time.Time) []int64 {
	w := WindowOf(now)
	ws := []int64{w}
	for _, o := range []int64{WindowOf(now.Add(-CredentialSkew)), WindowOf(now.Add(CredentialSkew))} {
		if !slices.Contains(ws, o) {
			ws = append(ws, o)
		}
	}
	return ws
}

// SignNeighbourRequest returns the NeighbourAuthHeader value of a request for path to a
// neighbour in channel at now, signed with a key (looked up by window) that covers now;
// false when none does.
func SignNeighbourRequest(keys func(window int64) (ChannelKey, bool), channel, path string, now time.Time) (string, bool) {
	for _, w := range credentialWindows(now) {
		if k, ok := keys(w); ok {
			head := channel + " " + strconv.FormatInt(w, 10) + " " + strconv.FormatInt(now.Unix(), 10)
			return head + " " + neighbourMAC(k, head, path), true
		}
	}
	return "", false
}

func neighbourMAC(k ChannelKey, head, path string) string {
	key, _ := hex.DecodeString(k.Key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(head + " " + path))
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of CheckNeighbourRequest.
var (
	// ErrNoCredential: the request carries no credential, or a malformed one (401).
	ErrNoCredential = errors.New("no swarm credential")
	// ErrBadCredential: the credential is not the channel's, or is stale (403).
	ErrBadCredential = errors.New("swarm credential refused")
)

// CheckNeighbourRequest verifies the NeighbourAuthHeader value v of a request for path at
// now against keys (the neighbour's own, by channel and window), and returns the channel
// it was made for.
func CheckNeighbourRequest(keys func(channel string, window int64) (ChannelKey, bool), v, path string, now time.Time) (string, error) {
	f := strings.Fields(v)
	if len(f) != 4 {
		return "", ErrNoCredential
	}
	channel := f[0]
	w, err1 := strconv.ParseInt(f[1], 10, 64)
	unix, err2 := strconv.ParseInt(f[2], 10, 64)
	if !ValidChannel(channel) || err1 != nil || err2 != nil || !ValidDigest(f[3]) {
		return "", ErrNoCredential
	}
	skew := int64(CredentialSkew / time.Second)
	if d := now.Unix() - unix; d > skew || d < -skew {
		return "", ErrBadCredential
	}
	k, ok := keys(channel, w)
	if !ok || !slices.Contains(credentialWindows(time.Unix(unix, 0)), w) {
		return "", ErrBadCredential
	}
	if !hmac.Equal([]byte(f[3]), []byte(neighbourMAC(k, f[0]+" "+f[1]+" "+f[2], path))) {
		return "", ErrBadCredential
	}
	return channel, nil
}

// CertFingerprint returns the fingerprint of a certificate given in DER, as subscriptions
// and plans carry it (Subscription.Cert, Source.Cert): its SHA-256, 64 lower-case hex
// digits. A proxy's neighbour port serves TLS with a certificate it made at start; the
// gateway, which proxies trust for plans and digests already, vouches for it by passing
// its fingerprint on, so no authority signs it.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
