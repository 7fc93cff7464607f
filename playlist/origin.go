package playlist

// OriginSegment is one segment of an origin's media playlist.
type OriginSegment struct {
	Seq           uint64  // media sequence number: MEDIA-SEQUENCE + index
	URI           string  // as written in the playlist (relative or absolute; caller resolves)
	Duration      float64 // EXTINF seconds
	Discontinuity bool
}

// OriginMedia is an origin's media playlist.
type OriginMedia struct {
	TargetDuration        int // EXT-X-TARGETDURATION as written, never raised to fit an EXTINF
	MediaSequence         uint64
	DiscontinuitySequence uint64
	Ended                 bool            // EXT-X-ENDLIST
	Segments              []OriginSegment // nil when the playlist lists none
}

// ParseOrigin parses an origin's media playlist. It returns ErrTooLarge, ErrTooManySegments,
// ErrNotMedia for a multivariant playlist, and ErrMalformed for anything else it rejects
// (see the package documentation).
func ParseOrigin(data []byte) (*OriginMedia, error) {
	d, err := decodeMedia(data, false, nil)
	if err != nil {
		return nil, err
	}
	m := &OriginMedia{
		TargetDuration:        d.targetDuration,
		MediaSequence:         d.pl.SeqNo,
		DiscontinuitySequence: d.pl.DiscontinuitySeq,
		Ended:                 d.pl.Closed,
	}
	for i, s := range d.segs {
		m.Segments = append(m.Segments, OriginSegment{
			Seq:           m.MediaSequence + uint64(i),
			URI:           s.URI,
			Duration:      s.Duration,
			Discontinuity: s.Discontinuity,
		})
	}
	return m, nil
}
