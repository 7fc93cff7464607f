package gateway

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
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
		segs = append(segs, w.append(t0.Add(time.Duration(i)*2*time.Second), playlist.Segment{Duration: 2, Discontinuity: false}, payload(i, 100), ".ts", nil, nil))
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
	w.append(t0.Add(13*time.Second), playlist.Segment{Duration: 2, Discontinuity: false}, payload(5, 100), ".ts", nil, nil)
	assert.NotNil(t, w.segment(segs[0].Name), "still within retention at 13 s")
	w.append(t0.Add(14*time.Second), playlist.Segment{Duration: 2, Discontinuity: false}, payload(6, 100), ".ts", nil, nil)
	assert.Nil(t, w.segment(segs[0].Name), "evicted at 14 s")
}

func TestWindowMemoryBound(t *testing.T) {
	w := newWindow(10, 350, 2, LatencyNormal)
	t0 := time.Unix(0, 0)
	var last *Segment
	for i := range 8 {
		last = w.append(t0, playlist.Segment{Duration: 2, Discontinuity: false}, payload(i, 100), ".ts", nil, nil)
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
	w.append(t0, playlist.Segment{Duration: 2, Discontinuity: true}, payload(0, 10), ".ts", nil, nil) // the first segment never carries a discontinuity
	w.append(t0, playlist.Segment{Duration: 2, Discontinuity: true}, payload(1, 10), ".ts", nil, nil)
	for i := 2; i < 6; i++ {
		w.append(t0, playlist.Segment{Duration: 2, Discontinuity: false}, payload(i, 10), ".ts", nil, nil)
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
	w.append(time.Unix(0, 0), playlist.Segment{Duration: 2, Discontinuity: false}, payload(0, 10), ".ts", nil, nil)
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

// TestWindowTakesFleetListings: the window lists a segment under the fleet's number when it
// is new, next, or further on (starting again there), and under its own when the fleet's
// is one it has passed.
func TestWindowTakesFleetListings(t *testing.T) {
	w := newWindow(4, 1<<20, 2, LatencyNormal)
	t0 := time.Unix(0, 0)
	add := func(i int, at *swarm.Listing) *Segment {
		return w.append(t0, playlist.Segment{Duration: 2}, payload(i, 100), ".ts", nil, at)
	}
	form := func() *playlist.Window {
		pl, err := playlist.ParseGateway(proxiesForm(w))
		require.NoError(t, err)
		return pl
	}
	first := add(0, &swarm.Listing{Seq: 40, Disc: true, DiscSeq: 3})
	assert.Equal(t, uint64(40), first.Seq, "a new window starts where the fleet is")
	pl := form()
	assert.Equal(t, uint64(40), pl.MediaSequence)
	assert.Equal(t, uint64(2), pl.DiscontinuitySequence, "the fleet's, less the first segment's own tag")
	assert.True(t, pl.Segments[0].Discontinuity)

	assert.Equal(t, uint64(41), add(1, &swarm.Listing{Seq: 41, DiscSeq: 3}).Seq, "the next number")
	own := add(2, &swarm.Listing{Seq: 30, DiscSeq: 1})
	assert.Equal(t, uint64(42), own.Seq, "a number passed: the window's own")
	assert.False(t, own.Discontinuity)
	assert.Equal(t, uint64(43), add(3, nil).Seq, "no listing: the window's own")

	jump := add(4, &swarm.Listing{Seq: 50, DiscSeq: 4, Disc: true})
	assert.Equal(t, uint64(50), jump.Seq, "further on: the window starts again there")
	pl = form()
	assert.Equal(t, uint64(50), pl.MediaSequence)
	assert.Len(t, pl.Segments, 1, "what came before is retired")
	assert.Equal(t, uint64(3), pl.DiscontinuitySequence)
	assert.NotNil(t, w.segment(first.Name), "retired segments stay fetchable")
	assert.Equal(t, uint64(51), w.timeline().NextSeq)

	c := w.claim(playlist.Segment{Digest: playlist.Sum([]byte("x")), Discontinuity: true}, 12*time.Second, 6)
	assert.Equal(t, swarm.ListClaim{Digest: playlist.Sum([]byte("x")).String(), Disc: true, MinSeq: 51, MaxAge: 16 * time.Second, MaxBehind: 8}, c)
}

// TestWindowForgetsEvictedSegments: once evicted, a segment's memory is free to collect:
// neither the listed nor the retired slice's backing array keeps it alive.
func TestWindowForgetsEvictedSegments(t *testing.T) {
	w := newWindow(2, 1<<20, 2, LatencyNormal)
	t0 := time.Unix(0, 0)
	first := weak.Make(w.append(t0, playlist.Segment{Duration: 2}, payload(0, 1000), ".ts", nil, nil))
	for i := 1; i < 4; i++ { // retires the first at the third, evicts it at the fourth
		w.append(t0.Add(time.Duration(i)*time.Minute), playlist.Segment{Duration: 2}, payload(i, 1000), ".ts", nil, nil)
	}
	require.Nil(t, w.segment(segmentName(first)), "evicted")
	runtime.GC()
	runtime.GC()
	assert.Nil(t, first.Value(), "the evicted segment is still reachable")
	runtime.KeepAlive(w) // the window itself stays reachable throughout
}

// segmentName is the name of a segment still reachable through p, or "".
func segmentName(p weak.Pointer[Segment]) string {
	if s := p.Value(); s != nil {
		return s.Name
	}
	return ""
}
