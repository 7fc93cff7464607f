package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

func payload(i int, size int) []byte {
	b := make([]byte, size)
	copy(b, fmt.Sprintf("segment %d", i))
	return b
}

func TestWindowListsAndRetains(t *testing.T) {
	w := newWindow(3, 1<<20, 2, LatencyNormal)
	t0 := time.Unix(0, 0)
	var segs []*Segment
	for i := range 5 {
		segs = append(segs, w.append(t0.Add(time.Duration(i)*2*time.Second), playlist.Segment{Duration: 2, Discontinuity: false}, payload(i, 100), ".ts", nil))
	}
	pl, err := playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), pl.MediaSequence, "window of 3 after 5 segments")
	require.Len(t, pl.Segments, 3)
	for i, s := range pl.Segments {
		assert.Equal(t, segs[i+2].Name, s.Name)
		assert.Equal(t, segs[i+2].Digest, s.Digest)
		assert.Equal(t, int64(100), s.Size)
	}
	// RFC 8216 §6.2.2: a removed segment stays fetchable for its duration plus the
	// playlist's duration (2 + 3×2 = 8 s after it left at t=6 s, so until t=14 s).
	assert.NotNil(t, w.segment(segs[0].Name), "retired but retained")
	w.append(t0.Add(13*time.Second), playlist.Segment{Duration: 2, Discontinuity: false}, payload(5, 100), ".ts", nil)
	assert.NotNil(t, w.segment(segs[0].Name), "still within retention at 13 s")
	w.append(t0.Add(14*time.Second), playlist.Segment{Duration: 2, Discontinuity: false}, payload(6, 100), ".ts", nil)
	assert.Nil(t, w.segment(segs[0].Name), "evicted at 14 s")
}

func TestWindowMemoryBound(t *testing.T) {
	w := newWindow(10, 350, 2, LatencyNormal)
	t0 := time.Unix(0, 0)
	var last *Segment
	for i := range 8 {
		last = w.append(t0, playlist.Segment{Duration: 2, Discontinuity: false}, payload(i, 100), ".ts", nil)
	}
	_, bytes := w.held()
	assert.LessOrEqual(t, bytes, int64(350))
	assert.NotNil(t, w.segment(last.Name), "the newest segment is never evicted")
	pl, err := playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Len(t, pl.Segments, 3)
}

func TestWindowDiscontinuitySequence(t *testing.T) {
	w := newWindow(3, 1<<20, 2, LatencyNormal)
	t0 := time.Unix(0, 0)
	w.append(t0, playlist.Segment{Duration: 2, Discontinuity: true}, payload(0, 10), ".ts", nil) // the first segment never carries a discontinuity
	w.append(t0, playlist.Segment{Duration: 2, Discontinuity: true}, payload(1, 10), ".ts", nil)
	for i := 2; i < 6; i++ {
		w.append(t0, playlist.Segment{Duration: 2, Discontinuity: false}, payload(i, 10), ".ts", nil)
	}
	pl, err := playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), pl.DiscontinuitySequence, "segment 1's discontinuity left the window")
	for _, s := range pl.Segments {
		assert.False(t, s.Discontinuity)
	}
}

func TestWindowNextClosesOnChange(t *testing.T) {
	w := newWindow(3, 1<<20, 2, LatencyNormal)
	ch := w.next()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	w.append(time.Unix(0, 0), playlist.Segment{Duration: 2, Discontinuity: false}, payload(0, 10), ".ts", nil)
	select {
	case <-ch:
	default:
		t.Fatal("not closed after append")
	}
}

func proxiesForm(w *window) []byte {
	b, _ := w.playlist(playlist.ForProxies)
	return b
}
