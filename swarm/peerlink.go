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

// Peer links: how one proxy fetches from another's neighbour port.
//
// Encryption and the neighbour's identity. A proxy serves its neighbour port over TLS with
// a certificate it makes at start; it subscribes with the certificate's fingerprint
// (Subscription.Cert), and the plans name it with the peer (Source.Cert). A proxy dialling a
// source accepts that certificate only: the gateway, which the proxy trusts for digests and
// plans already, vouches for it.
//
// Admission. A neighbour port serves only proxies the gateway admitted to the channel: the
// hello and every token event give a peer the channel's swarm keys (ChannelKey) for the
// current credential window and the next, which the gateway derives from its peer key, so
// that gateways of a fleet give the same ones. Each neighbour request proves, in
// NeighbourAuthHeader, that its sender holds the key: "CHANNEL WINDOW UNIX MAC", with UNIX
// the sender's clock in seconds and MAC the hex HMAC-SHA256, under WINDOW's key, of
// "CHANNEL WINDOW UNIX PATH". The neighbour checks it with its own copy of the key, without
// asking the gateway. A proxy that never joined the channel, or stopped getting fresh keys
// (it left, or was banned), has no key for the window of the moment: at most
// 2 × CredentialWindow after its last key came, it is refused.
const (
	// NeighbourAuthHeader is the neighbour request header that proves admission.
	NeighbourAuthHeader = "RawFlow-Swarm"
	// CredentialWindow is the span of one swarm key; token events (every half TokenTTL)
	// bring the keys of the window of the moment and the next.
	CredentialWindow = 5 * time.Minute
	// CredentialSkew is how far apart the clocks of two proxies may be: a request's UNIX
	// may be that far from the neighbour's clock, and its window that far from the
	// neighbour's window.
	CredentialSkew = 30 * time.Second
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

// ChannelKeys returns the channel's swarm keys of now's window and the next, derived from the
// gateway's peer key: HMAC-SHA256(peerKey, "swarm:CHANNEL:WINDOW").
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

// ValidCert reports whether fp has the form of a certificate fingerprint: the SHA-256 of
// the certificate (DER), 64 lower-case hex digits.
func ValidCert(fp string) bool { return ValidDigest(fp) }

// Fingerprint returns the fingerprint of a certificate given in DER.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// credentialWindows returns the windows a request signed at now may use: now's, then the
// ones within CredentialSkew of it.
func credentialWindows(now time.Time) []int64 {
	w := WindowOf(now)
	ws := []int64{w}
	for _, o := range []int64{WindowOf(now.Add(-CredentialSkew)), WindowOf(now.Add(CredentialSkew))} {
		if o != w {
			ws = append(ws, o)
		}
	}
	return ws
}

// SignNeighbourRequest returns the NeighbourAuthHeader value of a request for path to a
// neighbour in channel at now, signed with the first of keys (a lookup by window) that
// covers now; false when none does.
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
	ErrNoCredential = errors.New("swarm: no swarm credential")
	// ErrBadCredential: the credential is not the channel's, or has expired (403).
	ErrBadCredential = errors.New("swarm: swarm credential refused")
)

// CheckNeighbourRequest verifies the NeighbourAuthHeader value v of a request for path at
// now against keys (the neighbour's own, by channel and window), and returns the channel it
// was made for.
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
	if !ok || !slices.Contains(credentialWindows(now), w) {
		return "", ErrBadCredential
	}
	if !hmac.Equal([]byte(f[3]), []byte(neighbourMAC(k, f[0]+" "+f[1]+" "+f[2], path))) {
		return "", ErrBadCredential
	}
	return channel, nil
}
