package playlist

import (
	"fmt"
	"testing"
)

// BenchmarkRender renders a 6-segment live window in both forms; the gateway does this
// once per window change, never per request.
func BenchmarkRender(b *testing.B) {
	w := Window{TargetDuration: 2, MediaSequence: 100}
	for i := range 6 {
		d := Sum([]byte(fmt.Sprint(i)))
		w.Segments = append(w.Segments, Segment{Seq: uint64(100 + i), Name: SegmentName(uint64(100+i), d, ".ts"), Duration: 2, Digest: d, Size: 1 << 20})
	}
	for _, f := range []Form{ForPlayers, ForProxies} {
		b.Run(fmt.Sprint("form", f), func(b *testing.B) {
			for b.Loop() {
				_ = Render(w, f)
			}
		})
	}
}

// BenchmarkDigest is the SHA-256 the gateway computes once per segment (and a proxy per
// neighbour transfer).
func BenchmarkDigest(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = Sum(data)
	}
}
