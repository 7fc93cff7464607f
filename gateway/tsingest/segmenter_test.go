package tsingest

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkSegments asserts what every segment of a stream must be: numbered one after the
// other, PAT then PMT first, whole packets, starting with a keyframe (ffprobe's K flag) on
// video, with durations that match the timestamps ffprobe reads.
func checkSegments(t *testing.T, segs []Segment, video bool) {
	t.Helper()
	require.GreaterOrEqual(t, len(segs), 3)
	dir := t.TempDir()
	var prevPTS float64
	for i, seg := range segs {
		require.Zero(t, len(seg.Data)%PacketSize, "segment %d: whole packets", seg.Seq)
		require.Equal(t, uint16(patPID), pid(seg.Data), "segment %d starts with the PAT", seg.Seq)
		pmtPID, err := parsePAT([][]byte{seg.Data[:PacketSize]})
		require.NoError(t, err)
		require.Equal(t, pmtPID, pid(seg.Data[PacketSize:]), "segment %d: then the PMT", seg.Seq)
		if i > 0 {
			require.Equal(t, segs[i-1].Seq+1, seg.Seq, "sequence numbers follow on")
		}
		path := writeSegment(t, dir, seg)
		kind := "a"
		if video {
			kind = "v"
		}
		flags, ptsText := probeFirstPacket(t, path, kind)
		if video {
			require.Contains(t, flags, "K", "segment %d starts with a keyframe", seg.Seq)
		}
		pts, err := strconv.ParseFloat(ptsText, 64)
		require.NoError(t, err, "segment %d: first packet's pts %q", seg.Seq, ptsText)
		if i > 0 && pts > prevPTS { // (across the wrap, ffprobe's pts restart)
			assert.InDelta(t, pts-prevPTS, segs[i-1].Duration.Seconds(), 0.001, "segment %d's duration", segs[i-1].Seq)
		}
		prevPTS = pts
	}
}

func TestSegmentsStartWithTablesAndRandomAccess(t *testing.T) {
	skipShort(t)
	t.Parallel()
	for _, tc := range []struct {
		name  string
		video bool
		// Durations of the complete segments, from the PTS steps of the stream that is cut:
		// 2 s exactly on video (GOP of 2 s); audio packs several frames per PES packet.
		lo, hi time.Duration
	}{
		{"h264", true, 2 * time.Second, 2 * time.Second},
		{"h264-bframes", true, 2 * time.Second, 2 * time.Second},
		{"h265", true, 2 * time.Second, 2 * time.Second},
		{"aac", false, 1700 * time.Millisecond, 2300 * time.Millisecond},
		{"mp3", false, 1700 * time.Millisecond, 2300 * time.Millisecond},
		{"ac3", false, 1700 * time.Millisecond, 2300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSegmenter(2 * time.Second)
			segs := feed(s, stream(t, tc.name, 12), 1, true)
			checkSegments(t, segs, tc.video)
			for _, seg := range segs[:len(segs)-1] { // the last one was cut short by Break
				assert.True(t, seg.Duration >= tc.lo && seg.Duration <= tc.hi, "segment %d lasts %v", seg.Seq, seg.Duration)
				assert.False(t, seg.Discontinuity)
			}
			st := s.Stats()
			assert.Zero(t, st.SyncLosses+st.Damaged+st.BadTables+st.Discarded+st.Jumps+st.Misfits, "%+v", st)

			// Played one after the other, the segments decode without an error.
			var all []byte
			for _, seg := range segs {
				all = append(all, seg.Data...)
			}
			path := filepath.Join(t.TempDir(), "all.ts")
			require.NoError(t, os.WriteFile(path, all, 0o644))
			assert.Empty(t, decodeErrors(t, path))
			assertContinuity(t, all)
		})
	}
}

// assertContinuity checks that every PID's continuity counter steps by one from packet to
// packet carrying a payload, across the segment boundaries of the concatenated segments.
func assertContinuity(t *testing.T, ts []byte) {
	t.Helper()
	last := map[uint16]int{}
	for i := 0; i+PacketSize <= len(ts); i += PacketSize {
		p := ts[i : i+PacketSize]
		if p[3]&0x10 == 0 { // no payload: the counter does not step
			continue
		}
		id, cc := pid(p), int(p[3]&0x0F)
		if prev, ok := last[id]; ok {
			require.Equal(t, (prev+1)%16, cc, "PID %d at packet %d", id, i/PacketSize)
		}
		last[id] = cc
	}
}

func TestTwoSegmentersListTheSameSegments(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"h264", "aac"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ts := stream(t, name, 16)
			a := feed(newTestSegmenter(2*time.Second), ts, 1, false)
			// b joins 5.3 s into the stream (mid-packet, mid-GOP), reads in other chunks,
			// and its clock is an hour later.
			b := feed(New(Config{TargetDuration: 2 * time.Second, Now: func() time.Time { return fixedNow().Add(time.Hour) }}),
				ts[len(ts)*53/160:], 2, false)
			require.GreaterOrEqual(t, len(b), 3)
			byseq := map[uint64][32]byte{}
			for _, seg := range a {
				byseq[seg.Seq] = sha256.Sum256(seg.Data)
			}
			for _, seg := range b {
				want, ok := byseq[seg.Seq]
				require.True(t, ok, "b's segment %d is one of a's (a has %d…%d)", seg.Seq, a[0].Seq, a[len(a)-1].Seq)
				require.Equal(t, want, sha256.Sum256(seg.Data), "segment %d: same bytes", seg.Seq)
			}
		})
	}
}

func TestTimestampWrap(t *testing.T) {
	skipShort(t)
	t.Parallel()
	ts := stream(t, "h264-wrap", 14)
	s := newTestSegmenter(2 * time.Second)
	segs := feed(s, ts, 3, false)
	checkSegments(t, segs, true)
	for _, seg := range segs {
		assert.Equal(t, 2*time.Second, seg.Duration, "segment %d across the 33-bit wrap", seg.Seq)
		assert.False(t, seg.Discontinuity)
	}
	assert.Zero(t, s.Stats().Jumps)
}

func TestBreakAndRestartedSource(t *testing.T) {
	skipShort(t)
	t.Parallel()
	s := newTestSegmenter(2 * time.Second)
	first := feed(s, stream(t, "h264", 9), 1, true) // dropped after 9 s: the last one is cut short
	require.NotEmpty(t, first)
	last := first[len(first)-1]
	assert.InDelta(t, 1.0, last.Duration.Seconds(), 0.05, "the segment cut short ends at its last frame")
	// The source comes back with its timestamps from the start again.
	again := feed(s, stream(t, "h264", 9), 2, false)
	require.NotEmpty(t, again)
	assert.True(t, again[0].Discontinuity)
	assert.Equal(t, last.Seq+1, again[0].Seq, "numbers go on, never back")
	for _, seg := range again[1:] {
		assert.False(t, seg.Discontinuity)
	}
	checkSegments(t, append(first, again...), true)

	// Without a Break, a clock that jumps is seen as well.
	s = newTestSegmenter(2 * time.Second)
	ts := stream(t, "h264", 9)
	segs := feed(s, append(append([]byte{}, ts...), ts...), 4, false)
	assert.Equal(t, int64(1), s.Stats().Jumps)
	var discs int
	for i, seg := range segs {
		if seg.Discontinuity {
			discs++
		}
		if i > 0 {
			assert.Equal(t, segs[i-1].Seq+1, seg.Seq)
		}
	}
	assert.Equal(t, 1, discs)
}

func TestGarbageAndLoss(t *testing.T) {
	t.Parallel()
	ts := bytes.Clone(stream(t, "h264", 12))
	// Every 1000 packets: 77 bytes of garbage; every 500th packet lost; a few damaged.
	var in []byte
	for i := 0; i+PacketSize <= len(ts); i += PacketSize {
		n := i / PacketSize
		switch {
		case n%1000 == 999:
			in = append(in, bytes.Repeat([]byte{0x47, 0x00, 0xFF}, 26)[:77]...)
		case n%500 == 250:
			continue
		case n%700 == 300:
			p := bytes.Clone(ts[i : i+PacketSize])
			p[1] |= 0x80
			in = append(in, p...)
			continue
		}
		in = append(in, ts[i:i+PacketSize]...)
	}
	s := newTestSegmenter(2 * time.Second)
	segs := feed(s, in, 5, true)
	st := s.Stats()
	assert.Positive(t, st.SyncLosses)
	assert.Positive(t, st.Damaged)
	require.GreaterOrEqual(t, len(segs), 4)
	for _, seg := range segs {
		assert.Zero(t, len(seg.Data)%PacketSize)
		assert.Equal(t, uint16(patPID), pid(seg.Data))
	}
}

func TestGOPLongerThanTarget(t *testing.T) {
	t.Parallel()
	s := newTestSegmenter(2 * time.Second)
	segs := feed(s, stream(t, "h264-gop3", 14), 1, false)
	require.NotEmpty(t, segs)
	assert.Positive(t, s.Stats().Misfits, "warned")
	for i, seg := range segs {
		assert.Equal(t, 3*time.Second, seg.Duration, "cut on the keyframes there are")
		if i > 0 {
			assert.Equal(t, segs[i-1].Seq+1, seg.Seq)
		}
	}
}

func TestSegmentSizeBound(t *testing.T) {
	t.Parallel()
	s := New(Config{TargetDuration: 2 * time.Second, MaxSegmentBytes: 20 << 10, Now: fixedNow})
	segs := feed(s, stream(t, "h264", 8), 1, true)
	assert.Empty(t, segs, "no 2 s of this stream fits in 20 KiB")
	assert.Positive(t, s.Stats().Discarded)
	assert.LessOrEqual(t, cap(s.cur), 4<<20)
}
