package gateway

import (
	"net/url"

	"github.com/rawflow/rawflow/playlist"
)

// objectKind says what a named object in a window is.
type objectKind int

const (
	kindSegment objectKind = iota // a media segment
	kindInit                      // an init section (EXT-X-MAP)
	kindKey                       // a decryption key (EXT-X-KEY): never cached by shared caches
)

// Segment is one object the gateway serves under a rendition — a media segment, an init
// section or a key: immutable once created, shared by every response that serves it
// without copying.
type Segment struct {
	playlist.Segment
	// Data is every byte of the object. Never modified after the object is created.
	Data []byte
	// ETag is the strong validator derived from the digest.
	ETag string
	kind objectKind
	aux  []*Segment // the init section and key a media segment refers to
	// src and rng locate an on-demand (VOD) segment at the origin; Data is nil until a
	// request fetches it (see vodStore).
	src *url.URL
	rng *playlist.ByteRange
}

// newObject names data after its digest: "PREFIX-DIGEST16EXT". Used for init sections and keys.
func newObject(kind objectKind, prefix string, data []byte, ext string) *Segment {
	d := playlist.Sum(data)
	return &Segment{
		Segment: playlist.Segment{Name: prefix + "-" + d.String()[:16] + ext, Digest: d, Size: int64(len(data))},
		Data:    data,
		ETag:    `"` + d.String()[:32] + `"`,
		kind:    kind,
	}
}

// newSegment completes a media segment: its sequence number, its name, its digest (unless
// meta carries it already).
func newSegment(seq uint64, meta playlist.Segment, data []byte, ext string, aux []*Segment) *Segment {
	d := meta.Digest
	if d == (playlist.Digest{}) {
		d = playlist.Sum(data)
	}
	meta.Seq, meta.Name, meta.Digest, meta.Size = seq, playlist.SegmentName(seq, d, ext), d, int64(len(data))
	return &Segment{Segment: meta, Data: data, ETag: `"` + d.String()[:32] + `"`, aux: aux}
}

// cacheControl is the Cache-Control of the object.
func (s *Segment) cacheControl() []string {
	if s.kind == kindKey {
		return cacheKeyHeader
	}
	return cacheSegmentHeader
}

// The Cache-Control header values of segments and keys; shared, never modified.
var (
	cacheSegmentHeader = []string{cacheSegment}
	cacheKeyHeader     = []string{"private, no-store"}
)
