package gateway

import (
	"github.com/rawflow/rawflow/playlist"
)

// Segment is one media segment the gateway holds: immutable once created, shared by every
// response that serves it without copying.
type Segment struct {
	playlist.Segment
	// Data is every byte of the segment. Never modified after the segment is created.
	Data []byte
	// ETag is the strong validator derived from the digest.
	ETag string
}

func newSegment(seq uint64, duration float64, disc bool, data []byte, ext string) *Segment {
	d := playlist.Sum(data)
	return &Segment{
		Segment: playlist.Segment{
			Seq:           seq,
			Name:          playlist.SegmentName(seq, d, ext),
			Duration:      duration,
			Discontinuity: disc,
			Digest:        d,
			Size:          int64(len(data)),
		},
		Data: data,
		ETag: `"` + d.String()[:32] + `"`,
	}
}
