package peerassist

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/rawflow/rawflow/playlist"
)

func TestHoldBack(t *testing.T) {
	window := func(n int, ended bool) playlist.Window {
		w := playlist.Window{TargetDuration: 2, MediaSequence: 10, Ended: ended}
		for i := range n {
			w.Segments = append(w.Segments, playlist.Segment{Seq: uint64(10 + i)})
		}
		return w
	}
	for _, tc := range []struct {
		name      string
		in        playlist.Window
		n, listed int
	}{
		{"live window", window(6, false), 1, 5},
		{"two", window(6, false), 2, 4},
		{"never below three", window(4, false), 2, 3},
		{"short window untouched", window(2, false), 1, 2},
		{"ended untouched", window(6, true), 1, 6},
		{"disabled", window(6, false), 0, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := holdBack(tc.in, tc.n)
			assert.Len(t, got.Segments, tc.listed)
			assert.Equal(t, tc.in.MediaSequence, got.MediaSequence)
			if tc.listed > 0 {
				assert.Equal(t, tc.in.Segments[0], got.Segments[0], "only the newest are held back")
			}
		})
	}
}

// TestForPlayer: the gateway's latency mode (its HOLD-BACK) decides how many segments every
// proxy hides, and players get a HOLD-BACK of three target durations.
func TestForPlayer(t *testing.T) {
	window := func(hold time.Duration, ended bool) playlist.Window {
		w := playlist.Window{TargetDuration: 2, MediaSequence: 10, Ended: ended}
		for i := range 10 {
			w.Segments = append(w.Segments, playlist.Segment{Seq: uint64(10 + i)})
		}
		w.Header = playlist.WithHoldBack([]string{"#EXT-X-INDEPENDENT-SEGMENTS"}, hold)
		return w
	}
	for _, tc := range []struct {
		name   string
		hold   time.Duration
		ended  bool
		listed int
	}{
		{"low", 6 * time.Second, false, 10},
		{"normal", 8 * time.Second, false, 9},
		{"high", 12 * time.Second, false, 7},
		{"no HOLD-BACK: the default", 0, false, 9},
		{"ended", 12 * time.Second, true, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := window(tc.hold, tc.ended)
			got := forPlayer(in)
			assert.Len(t, got.Segments, tc.listed)
			hold, ok := playlist.HoldBack(got.Header)
			assert.Equal(t, tc.hold > 0, ok)
			if ok && !tc.ended {
				assert.Equal(t, 6*time.Second, hold, "three target durations behind what the player sees")
			}
			assert.Contains(t, got.Header, "#EXT-X-INDEPENDENT-SEGMENTS", "other header lines kept")
		})
	}
}
