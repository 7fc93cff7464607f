package gateway

import (
	"fmt"
	"time"
)

// LatencyMode is a channel's trade between latency and offload. Proxies hide the newest
// HoldBackSegments segments of a live playlist from their player, which gives the swarm
// that long to spread each new segment before any player asks for it (the P2P window).
// Every proxy of a channel must hide the same number, or the swarm fragments in time, so
// the gateway decides it: each live media playlist it serves says
// HOLD-BACK = (3 + HoldBackSegments) target durations, with a matching EXT-X-START (see
// playlist.WithHoldBack). A direct player of the gateway thus starts as far behind live as
// an assisted player whose proxy hides HoldBackSegments and who starts 3 behind.
type LatencyMode string

// The latency modes.
const (
	LatencyLow    LatencyMode = "low"    // lowest latency; players may ask for a segment the swarm is still spreading
	LatencyNormal LatencyMode = "normal" // the default
	LatencyHigh   LatencyMode = "high"   // most time for the swarm: highest offload, fewest gateway fallbacks
)

// playerHoldBack is how many target durations behind the end of the playlist players
// start: RFC 8216 §6.3.3 says at least three.
const playerHoldBack = 3

// ParseLatencyMode parses a latency mode; "" means LatencyNormal.
func ParseLatencyMode(s string) (LatencyMode, error) {
	switch m := LatencyMode(s); m {
	case "":
		return LatencyNormal, nil
	case LatencyLow, LatencyNormal, LatencyHigh:
		return m, nil
	}
	return "", fmt.Errorf("latency mode %q: want %s, %s or %s", s, LatencyLow, LatencyNormal, LatencyHigh)
}

// HoldBackSegments is how many of the newest segments proxies hide from their player:
// low 0, normal 1, high 3. "" is normal; an unknown mode is normal too (Validate refuses
// them).
func (m LatencyMode) HoldBackSegments() int {
	switch m {
	case LatencyLow:
		return 0
	case LatencyHigh:
		return 3
	}
	return 1
}

// minWindow is the fewest segments a live playlist of this mode lists: the hidden ones,
// the three a player starts behind, and one more to play from.
func (m LatencyMode) minWindow() int { return m.HoldBackSegments() + playerHoldBack + 1 }

// holdBack is the HOLD-BACK of a live playlist of this mode with target duration td seconds.
func (m LatencyMode) holdBack(td int) time.Duration {
	return time.Duration(playerHoldBack+m.HoldBackSegments()) * time.Duration(td) * time.Second
}
