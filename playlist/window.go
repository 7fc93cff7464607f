package playlist

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/grafov/m3u8"
)

// Segment is one segment of the gateway's own playlist.
type Segment struct {
	Seq           uint64
	Name          string // URI as written: a relative name like "1234-0a1b2c3d4e5f6a7b.ts"
	Duration      float64
	Discontinuity bool
	Digest        Digest
	Size          int64
}

// Window is what the gateway lists for one media playlist.
type Window struct {
	TargetDuration        int    // fixed per stream; written as is (never recomputed from EXTINF)
	MediaSequence         uint64 // Seq of Segments[0] when non-empty
	DiscontinuitySequence uint64
	Ended                 bool
	Segments              []Segment // nil when empty
}

// Form selects what Render writes.
type Form int

const (
	ForPlayers Form = iota // plain HLS
	ForProxies             // the same plus one digest tag per segment
)

// SegmentName names a segment after its sequence number and the first 16 hex digits of its
// digest, e.g. SegmentName(1234, d, ".ts") = "1234-0a1b2c3d4e5f6a7b.ts".
func SegmentName(seq uint64, d Digest, ext string) string {
	return strconv.FormatUint(seq, 10) + "-" + d.String()[:16] + ext
}

// Render writes w as an HLS media playlist (version 3). The same Window and Form always give
// the same bytes. Render trusts w and checks nothing: MediaSequence is written as is and
// should equal Segments[0].Seq; segment Seqs are not written (a reader numbers segments from
// MEDIA-SEQUENCE); Names must be non-empty single lines that do not start with '#'.
//
// EXT-X-DISCONTINUITY-SEQUENCE is written when it is non-zero or a segment is
// discontinuous, which keeps a plain live playlist as short as ffmpeg's. Durations are
// written with three decimals. ForProxies adds the digest tag immediately before each
// EXTINF; any Form other than ForProxies renders as ForPlayers.
func Render(w Window, f Form) []byte {
	var b bytes.Buffer
	b.Grow(96 + len(w.Segments)*(48+len(digestTagName)+96))
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n",
		w.TargetDuration, w.MediaSequence)
	if w.DiscontinuitySequence != 0 || anyDiscontinuity(w.Segments) {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", w.DiscontinuitySequence)
	}
	for _, s := range w.Segments {
		if s.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if f == ForProxies {
			b.WriteString(digestTag{digest: s.Digest, size: s.Size}.String() + "\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", s.Duration, s.Name)
	}
	if w.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

func anyDiscontinuity(segs []Segment) bool {
	for _, s := range segs {
		if s.Discontinuity {
			return true
		}
	}
	return false
}

// ParseGateway parses what Render(w, ForProxies) writes. Every segment must carry exactly
// one valid digest tag, else ErrMalformed; otherwise the rules and errors are ParseOrigin's.
// Segment Seqs are MEDIA-SEQUENCE + index; Names are the URIs as written.
func ParseGateway(data []byte) (*Window, error) {
	d, err := decodeMedia(data, true, []m3u8.CustomDecoder{digestDecoder{}})
	if err != nil {
		return nil, err
	}
	w := &Window{
		TargetDuration:        d.targetDuration,
		MediaSequence:         d.pl.SeqNo,
		DiscontinuitySequence: d.pl.DiscontinuitySeq,
		Ended:                 d.pl.Closed,
	}
	for i, s := range d.segs {
		tag, ok := s.Custom[digestTagName].(digestTag)
		if !ok { // scan counted one tag per segment; kept as a guard
			return nil, fmt.Errorf("%w: segment %d: no digest tag", ErrMalformed, i)
		}
		w.Segments = append(w.Segments, Segment{
			Seq:           w.MediaSequence + uint64(i),
			Name:          s.URI,
			Duration:      s.Duration,
			Discontinuity: s.Discontinuity,
			Digest:        tag.digest,
			Size:          tag.size,
		})
	}
	return w, nil
}
