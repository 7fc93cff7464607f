package playlist

import (
	"strconv"
)

// Segment is one segment of the gateway's own playlist, with everything in force for it.
type Segment struct {
	Seq             uint64
	Name            string // URI as written: a relative name like "1234-0a1b2c3d4e5f6a7b.ts"
	Duration        float64
	Discontinuity   bool
	Digest          Digest
	Size            int64
	Title           string   // EXTINF title
	Init            *InitRef // the init section in force; nil if none
	Key             *Key     // the key in force; nil if clear. URI is written as given
	ProgramDateTime string   // written verbatim when non-empty
	Tags            []string // other tag lines, written verbatim before EXTINF
}

// InitRef is the init section of the gateway's own playlist.
type InitRef struct {
	Name   string // URI as written
	Digest Digest
	Size   int64
}

// Window is what the gateway lists for one media playlist.
type Window struct {
	TargetDuration        int    // fixed per stream; written as is (never recomputed from EXTINF)
	MediaSequence         uint64 // Seq of Segments[0] when non-empty
	DiscontinuitySequence uint64
	Ended                 bool
	Segments              []Segment // nil when empty
	// Version is the least EXT-X-VERSION to write (e.g. the origin's, which covers what
	// Header and Tags need); Render writes the larger of it and what the modelled
	// features need (see MinVersion). 0: just what they need.
	Version      int
	PlaylistType string   // "EVENT" or "VOD": written as EXT-X-PLAYLIST-TYPE; "": none
	Header       []string // written verbatim after the fixed header tags
	Trailer      []string // written verbatim after the last segment (before EXT-X-ENDLIST)
}

// Form selects what Render writes.
type Form int

// The forms of a media playlist.
const (
	ForPlayers Form = iota // plain HLS
	ForProxies             // the same plus one digest tag per segment and init section
)

// SegmentName names a segment after its sequence number and the first 16 hex digits of its
// digest, e.g. SegmentName(1234, d, ".ts") = "1234-0a1b2c3d4e5f6a7b.ts".
func SegmentName(seq uint64, d Digest, ext string) string {
	return strconv.FormatUint(seq, 10) + "-" + d.String()[:16] + ext
}

// ParseGateway parses what Render(w, ForProxies) writes. Every segment must carry exactly
// one valid digest tag, and every EXT-X-MAP be immediately preceded by one valid init tag,
// else ErrMalformed; byte ranges are ErrMalformed too. Otherwise the rules and errors are
// ParseOrigin's. Segment Seqs are MEDIA-SEQUENCE + index; Names are the URIs as written.
// Version is the written EXT-X-VERSION when it exceeds MinVersion of the parsed window,
// else 0, so that windows with Version 0 round-trip.
func ParseGateway(data []byte) (*Window, error) {
	d, err := parseMedia(data, true)
	if err != nil {
		return nil, err
	}
	w := &Window{
		TargetDuration:        d.targetDuration,
		MediaSequence:         d.mediaSequence,
		DiscontinuitySequence: d.discontinuitySequence,
		Ended:                 d.ended,
		PlaylistType:          d.playlistType,
		Header:                d.header,
		Trailer:               d.trailer,
	}
	if len(d.segs) > 0 {
		w.Segments = make([]Segment, len(d.segs))
	}
	for i, s := range d.segs {
		w.Segments[i] = Segment{
			Seq:             w.MediaSequence + uint64(i),
			Name:            s.uri,
			Duration:        s.duration,
			Discontinuity:   s.discontinuity,
			Digest:          s.digest.digest,
			Size:            s.digest.size,
			Title:           s.title,
			Init:            s.initRef,
			Key:             s.key,
			ProgramDateTime: s.pdt,
			Tags:            s.tags,
		}
	}
	if d.version > MinVersion(*w) {
		w.Version = d.version
	}
	return w, nil
}
