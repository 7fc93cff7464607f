package gateway

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/playlist"
)

func payload(i int, size int) []byte {
	b := make([]byte, size)
	copy(b, fmt.Sprintf("segment %d", i))
	return b
}

// numbered makes a media segment of 2 s as ingest publishes it: numbered seq, in
// discontinuity sequence discSeq (its own tag counted), with the given bytes.
func numbered(seq uint64, disc bool, discSeq uint64, data []byte) *ingest.Segment {
	d := playlist.Sum(data)
	return &ingest.Segment{Segment: playlist.Segment{Seq: seq, Name: playlist.SegmentName(seq, d, ".ts"), Duration: 2,
		Discontinuity: disc, Digest: d, Size: int64(len(data))}, DiscSeq: discSeq, Data: data, ETag: ingest.ETag(d)}
}

// newTestWindow is a live window of size segments with target duration 2 s.
func newTestWindow(size int, maxBytes int64) *window {
	w := newWindow(size, maxBytes, LatencyNormal)
	w.SetPlaylist(ingest.PlaylistInfo{TargetDuration: 2})
	return w
}

func TestWindowListsAndRetains(t *testing.T) {
	w := newTestWindow(3, 1<<20)
	t0 := time.Unix(0, 0)
	var segs []*ingest.Segment
	for i := range 5 {
		segs = append(segs, numbered(uint64(i), false, 0, payload(i, 100)))
		require.NoError(t, w.Publish(t0.Add(time.Duration(i)*2*time.Second), segs[i]))
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
	require.NoError(t, w.Publish(t0.Add(13*time.Second), numbered(5, false, 0, payload(5, 100))))
	assert.NotNil(t, w.segment(segs[0].Name), "still within retention at 13 s")
	require.NoError(t, w.Publish(t0.Add(14*time.Second), numbered(6, false, 0, payload(6, 100))))
	assert.Nil(t, w.segment(segs[0].Name), "evicted at 14 s")
}

func TestWindowMemoryBound(t *testing.T) {
	w := newTestWindow(10, 350)
	t0 := time.Unix(0, 0)
	var last *ingest.Segment
	for i := range 8 {
		last = numbered(uint64(i), false, 0, payload(i, 100))
		require.NoError(t, w.Publish(t0, last))
	}
	_, bytes := w.held()
	assert.LessOrEqual(t, bytes, int64(350))
	assert.NotNil(t, w.segment(last.Name), "the newest segment is never evicted")
	pl, err := playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Len(t, pl.Segments, 3)
}

func TestWindowDiscontinuitySequence(t *testing.T) {
	w := newTestWindow(3, 1<<20)
	t0 := time.Unix(0, 0)
	require.NoError(t, w.Publish(t0, numbered(0, false, 0, payload(0, 10))))
	require.NoError(t, w.Publish(t0, numbered(1, true, 1, payload(1, 10))))
	for i := 2; i < 6; i++ {
		require.NoError(t, w.Publish(t0, numbered(uint64(i), false, 1, payload(i, 10))))
	}
	pl, err := playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), pl.DiscontinuitySequence, "segment 1's discontinuity left the window")
	for _, s := range pl.Segments {
		assert.False(t, s.Discontinuity)
	}
	w = newTestWindow(3, 1<<20)
	require.NoError(t, w.Publish(t0, numbered(40, true, 3, payload(0, 10))))
	pl, err = playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), pl.DiscontinuitySequence, "the first segment's, less its own tag")
	assert.True(t, pl.Segments[0].Discontinuity)
}

func proxiesForm(w *window) []byte {
	b, _ := w.playlist(playlist.ForProxies)
	return b
}

// TestWindowJumpsAndRefusesSteppingBack: a segment further on than the next number (the
// fleet listed segments this gateway did not) starts the playlist again there, its
// predecessors retired but fetchable; one that would take a sequence back is refused.
func TestWindowJumpsAndRefusesSteppingBack(t *testing.T) {
	w := newTestWindow(4, 1<<20)
	t0 := time.Unix(0, 0)
	first := numbered(40, false, 2, payload(0, 100))
	require.NoError(t, w.Publish(t0, first))
	require.NoError(t, w.Publish(t0, numbered(41, false, 2, payload(1, 100))))
	require.ErrorIs(t, w.Publish(t0, numbered(41, false, 2, payload(2, 100))), errBehind)
	require.ErrorIs(t, w.Publish(t0, numbered(42, false, 1, payload(2, 100))), errBehind)

	require.NoError(t, w.Publish(t0, numbered(50, true, 4, payload(4, 100))))
	pl, err := playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Equal(t, uint64(50), pl.MediaSequence)
	assert.Len(t, pl.Segments, 1, "what came before is retired")
	assert.Equal(t, uint64(3), pl.DiscontinuitySequence)
	assert.NotNil(t, w.segment(first.Name), "retired segments stay fetchable")

	require.NoError(t, w.Publish(t0, numbered(51, false, 5, payload(5, 100))), "a discontinuity sequence that does not add up")
	pl, err = playlist.ParseGateway(proxiesForm(w))
	require.NoError(t, err)
	assert.Equal(t, uint64(51), pl.MediaSequence, "starts again")
	assert.Equal(t, uint64(5), pl.DiscontinuitySequence)
}

// TestWindowForgetsEvictedSegments: once evicted, a segment's memory is free to collect:
// neither the listed nor the retired slice's backing array keeps it alive.
func TestWindowForgetsEvictedSegments(t *testing.T) {
	w := newTestWindow(2, 1<<20)
	t0 := time.Unix(0, 0)
	// The first segment, published; no strong reference to it outlives this function.
	name, first := func() (string, weak.Pointer[ingest.Segment]) {
		seg := numbered(0, false, 0, payload(0, 1000))
		require.NoError(t, w.Publish(t0, seg))
		return seg.Name, weak.Make(seg)
	}()
	for i := 1; i < 4; i++ { // retires the first at the third, evicts it at the fourth
		require.NoError(t, w.Publish(t0.Add(time.Duration(i)*time.Minute), numbered(uint64(i), false, 0, payload(i, 1000))))
	}
	require.Nil(t, w.segment(name), "evicted")
	runtime.GC()
	runtime.GC()
	assert.Nil(t, first.Value(), "the evicted segment is still reachable")
	runtime.KeepAlive(w) // the window itself stays reachable throughout
}

// TestSegmentAheadIsWaitedFor: a request for a segment just past the newest listed one (a
// fleet's other gateway listed it first, and a load balancer sent the client here) waits
// until this gateway lists it; one further ahead, or never listed in time, is not found.
func TestSegmentAheadIsWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newTestWindow(6, 1<<20)
		for i := range 3 {
			require.NoError(t, w.Publish(time.Now(), numbered(uint64(i), false, 0, payload(i, 100))))
		}
		next := numbered(3, false, 0, payload(3, 100))
		got := make(chan *ingest.Segment, 1)
		start := time.Now()
		go func() { got <- w.awaitSegment(t.Context(), next.Name, 2*time.Second) }()
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("answered before the segment was listed")
		default:
		}
		time.Sleep(500 * time.Millisecond) // this gateway's poll lists it half a second later
		require.NoError(t, w.Publish(time.Now(), next))
		assert.Equal(t, next, <-got)
		assert.Equal(t, 500*time.Millisecond, time.Since(start))

		far := numbered(9, false, 0, payload(9, 100))
		start = time.Now()
		assert.Nil(t, w.awaitSegment(t.Context(), far.Name, 2*time.Second), "too far ahead: not waited for")
		assert.Zero(t, time.Since(start))
		never := numbered(4, false, 0, payload(40, 100))
		assert.Nil(t, w.awaitSegment(t.Context(), never.Name, 2*time.Second))
		assert.Equal(t, 2*time.Second, time.Since(start), "waited its bound, no more")
		assert.Nil(t, w.awaitSegment(t.Context(), "junk", 2*time.Second))
	})
}
