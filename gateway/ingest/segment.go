package ingest

import (
	"net/url"

	"github.com/rawflow/rawflow/playlist"
)

// ObjectKind says what a named object of a rendition is.
type ObjectKind int

// The kinds of object a rendition serves.
const (
	KindSegment ObjectKind = iota // a media segment
	KindInit                      // an init section (EXT-X-MAP)
	KindKey                       // a decryption key (EXT-X-KEY): never cached by shared caches
)

// Segment is one object a rendition serves — a media segment, an init section or a key:
// immutable once made, shared by every response that serves it without copying.
type Segment struct {
	playlist.Segment
	// DiscSeq is a media segment's discontinuity sequence number, its own tag counted: a
	// playlist that starts with it says EXT-X-DISCONTINUITY-SEQUENCE DiscSeq, less one if
	// it carries EXT-X-DISCONTINUITY (as swarm.Listing).
	DiscSeq uint64
	// Data is every byte of the object; never modified once the object is made. nil for
	// an on-demand (VOD) segment whose bytes are fetched when first asked for.
	Data []byte
	// ETag is the strong validator derived from the digest.
	ETag string
	Kind ObjectKind
	// Aux are the init section and key a media segment refers to.
	Aux []*Segment
	// Src and Range locate an on-demand (VOD) segment at the origin.
	Src   *url.URL
	Range *playlist.ByteRange
}

// newObject names data after its digest: "PREFIX-DIGEST16EXT". Used for init sections and keys.
func newObject(kind ObjectKind, prefix string, data []byte, ext string) *Segment {
	d := playlist.Sum(data)
	return &Segment{
		Segment: playlist.Segment{Name: prefix + "-" + d.String()[:16] + ext, Digest: d, Size: int64(len(data))},
		Data:    data,
		ETag:    ETag(d),
		Kind:    kind,
	}
}

// newSegment completes a media segment with its place in the timeline: its sequence
// number, discontinuity and discontinuity sequence, and its name and digest (unless meta
// carries the digest already).
func newSegment(p place, meta playlist.Segment, data []byte, ext string, aux []*Segment) *Segment {
	d := meta.Digest
	if d == (playlist.Digest{}) {
		d = playlist.Sum(data)
	}
	meta.Seq, meta.Discontinuity = p.seq, p.disc
	meta.Name, meta.Digest, meta.Size = playlist.SegmentName(p.seq, d, ext), d, int64(len(data))
	return &Segment{Segment: meta, DiscSeq: p.discSeq, Data: data, ETag: ETag(d), Aux: aux}
}

// ETag is the strong validator of an object with digest d.
func ETag(d playlist.Digest) string { return `"` + d.String()[:32] + `"` }

// WithData returns a copy of an on-demand segment with its bytes, digest and size.
func (s *Segment) WithData(data []byte) *Segment {
	seg := *s
	d := playlist.Sum(data)
	seg.Digest, seg.Size, seg.Data, seg.ETag = d, int64(len(data)), data, ETag(d)
	return &seg
}
