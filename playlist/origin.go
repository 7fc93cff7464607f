package playlist

// OriginSegment is one segment of an origin's media playlist, with everything in force for it.
type OriginSegment struct {
	Seq             uint64  // media sequence number: MEDIA-SEQUENCE + index
	URI             string  // as written in the playlist (relative or absolute; caller resolves)
	Duration        float64 // EXTINF seconds
	Discontinuity   bool
	Title           string     // EXTINF title after the comma ("" if none)
	Range           *ByteRange // EXT-X-BYTERANGE, resolved; nil if none
	Init            *Init      // the EXT-X-MAP in force for this segment; nil if none
	Key             *Key       // the key in force; nil if clear
	ProgramDateTime string     // EXT-X-PROGRAM-DATE-TIME value, verbatim; "" if none
	// Tags are the other tag lines before this segment (since the previous URI line),
	// verbatim, in order: EXT-X-DATERANGE, EXT-X-GAP, EXT-X-BITRATE, EXT-X-CUE-*, any
	// unknown #EXT… tag. See the package documentation for which tags are the header's.
	Tags []string
}

// OriginMedia is an origin's media playlist.
type OriginMedia struct {
	TargetDuration        int // EXT-X-TARGETDURATION as written, never raised to fit an EXTINF
	MediaSequence         uint64
	DiscontinuitySequence uint64
	Ended                 bool            // EXT-X-ENDLIST
	Segments              []OriginSegment // nil when the playlist lists none
	Version               int             // EXT-X-VERSION (0 if absent)
	PlaylistType          string          // "EVENT", "VOD" or ""
	// Header holds the playlist-level tags not modelled (EXT-X-INDEPENDENT-SEGMENTS,
	// EXT-X-START, EXT-X-DEFINE, unknown tags before the first media segment tag...),
	// verbatim, in order.
	Header []string
	// Trailer holds the unmodelled tags after the last segment's URI line, verbatim, in
	// order (nil when no segment is listed: such tags are then the Header's).
	Trailer []string
}

// ParseOrigin parses an origin's media playlist. It returns ErrTooLarge, ErrTooManySegments,
// ErrNotMedia for a multivariant playlist, and ErrMalformed for anything else it rejects
// (see the package documentation).
func ParseOrigin(data []byte) (*OriginMedia, error) {
	d, err := parseMedia(data, false)
	if err != nil {
		return nil, err
	}
	m := &OriginMedia{
		TargetDuration:        d.targetDuration,
		MediaSequence:         d.mediaSequence,
		DiscontinuitySequence: d.discontinuitySequence,
		Ended:                 d.ended,
		Version:               d.version,
		PlaylistType:          d.playlistType,
		Header:                d.header,
		Trailer:               d.trailer,
	}
	if len(d.segs) > 0 {
		m.Segments = make([]OriginSegment, len(d.segs))
	}
	for i, s := range d.segs {
		m.Segments[i] = OriginSegment{
			Seq:             m.MediaSequence + uint64(i),
			URI:             s.uri,
			Duration:        s.duration,
			Discontinuity:   s.discontinuity,
			Title:           s.title,
			Range:           s.rng,
			Init:            s.init,
			Key:             s.key,
			ProgramDateTime: s.pdt,
			Tags:            s.tags,
		}
	}
	return m, nil
}
