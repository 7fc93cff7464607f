package playlist

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Digest is a segment's SHA-256.
type Digest [32]byte

// Sum returns the SHA-256 of b.
func Sum(b []byte) Digest { return sha256.Sum256(b) }

// String returns the digest as 64 lower-case hex digits.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest parses the String form: exactly 64 lower-case hex digits. Any other input
// gives an error wrapping ErrMalformed.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != hex.EncodedLen(len(d)) || !isLowerHex(s) {
		return Digest{}, fmt.Errorf("%w: digest %.70q: want 64 lower-case hex digits", ErrMalformed, s)
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return Digest{}, fmt.Errorf("%w: digest: %w", ErrMalformed, err) // unreachable after isLowerHex
	}
	return d, nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
