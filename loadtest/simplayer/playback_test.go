package simplayer

import (
	"testing"
	"time"
)

// TestPlaybackModel drives the model with explicit times: start-up, a stall and its end,
// a gap jumped at once, and the end of the stream during a stall.
func TestPlaybackModel(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := t0.Add
	s := time.Second
	var b playback
	b.begin(t0)
	b.add(at(1*s), span{0, 2 * s}, 10)
	steps := []struct {
		name string
		do   func()
		at   time.Duration
		want Result
	}{
		{"playing", nil, 2 * s, Result{Started: true, Startup: s, Segments: 1, Bytes: 10, Buffer: s}},
		{"dry at 3 s", nil, 4 * s, Result{Started: true, Startup: s, Segments: 1, Bytes: 10, Stalls: 1, StallTime: s}},
		{"resumed at 4.5 s", func() { b.add(at(4500*time.Millisecond), span{2 * s, 4 * s}, 10) }, 4500 * time.Millisecond,
			Result{Started: true, Startup: s, Segments: 2, Bytes: 20, Stalls: 1, StallTime: 1500 * time.Millisecond, Buffer: 2 * s}},
		{"gap ahead", func() { b.add(at(5*s), span{6 * s, 8 * s}, 10) }, 5 * s,
			Result{Started: true, Startup: s, Segments: 3, Bytes: 30, Stalls: 1, StallTime: 1500 * time.Millisecond, Buffer: 3500 * time.Millisecond}},
		{"gap jumped, dry at 8.5 s", nil, 9 * s,
			Result{Started: true, Startup: s, Segments: 3, Bytes: 30, Stalls: 2, StallTime: 2 * s}},
		{"stream ends while stalled", func() { b.finish(at(9 * s)) }, 10 * s,
			Result{Started: true, Startup: s, Segments: 3, Bytes: 30, Stalls: 2, StallTime: 2 * s, Ended: true}},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		if got := b.result(at(st.at)); got != st.want {
			t.Errorf("%s: got %+v\nwant %+v", st.name, got, st.want)
		}
	}
}

// TestPlaybackEndsAfterPlayout checks that an ended stream is not a stall: Ended comes
// when the last buffered media has played.
func TestPlaybackEndsAfterPlayout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b playback
	b.begin(t0)
	b.add(t0, span{0, 2 * time.Second}, 1)
	if left := b.finish(t0.Add(500 * time.Millisecond)); left != 1500*time.Millisecond {
		t.Errorf("finish at 0.5 s: %v left, want 1.5s", left)
	}
	if r := b.result(t0.Add(time.Second)); r.Ended {
		t.Error("Ended with 1 s still to play")
	}
	if r := b.result(t0.Add(3 * time.Second)); !r.Ended || r.Stalls != 0 || r.StallTime != 0 {
		t.Errorf("after playout: %+v; want Ended, no stall", r)
	}
}
