package peerassist

import (
	"testing"

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
