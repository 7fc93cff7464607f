package playlist

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/grafov/m3u8"
)

// decoded is a media playlist as ParseOrigin and ParseGateway both need it: checked against
// every limit and rule of this package, with the target duration as written.
type decoded struct {
	targetDuration int
	pl             *m3u8.MediaPlaylist
	segs           []*m3u8.MediaSegment // pl.Segments[:pl.Count()], in playlist order
}

// decodeMedia checks data with scan, decodes the cleaned lines with grafov, and checks what
// grafov decoded. decoders are grafov custom decoders (nil for none).
func decodeMedia(data []byte, withDigests bool, decoders []m3u8.CustomDecoder) (decoded, error) {
	if len(data) > MaxPlaylistBytes {
		return decoded{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxPlaylistBytes)
	}
	s := scanner{withDigests: withDigests}
	clean, err := s.scan(data)
	if err != nil {
		return decoded{}, err
	}
	pl, err := grafovDecode(clean, decoders)
	if err != nil {
		return decoded{}, err
	}
	// Pitfall #2: Segments is padded with nil entries up to its capacity. No segment is ever
	// removed here, so the ring has not wrapped and [0, Count()) is playlist order.
	d := decoded{targetDuration: s.targetDuration, pl: pl, segs: pl.Segments[:pl.Count()]}
	return d, d.check(s.segments)
}

// check verifies what grafov decoded against scan's count and the value limits.
func (d decoded) check(scanned int) error {
	n := len(d.segs)
	if n != scanned { // scan and grafov disagree on the line structure: trust neither
		return fmt.Errorf("%w: decoder found %d segments, want %d", ErrMalformed, n, scanned)
	}
	if n > 0 && d.pl.SeqNo > math.MaxUint64-uint64(n-1) {
		return fmt.Errorf("%w: media sequence %d overflows with %d segments", ErrMalformed, d.pl.SeqNo, n)
	}
	for i, s := range d.segs {
		switch {
		case s == nil || s.URI == "":
			return fmt.Errorf("%w: segment %d: empty URI", ErrMalformed, i)
		case math.IsNaN(s.Duration) || s.Duration < 0 || s.Duration > maxDuration:
			return fmt.Errorf("%w: segment %d: duration %v out of [0, %d]", ErrMalformed, i, s.Duration, maxDuration)
		}
	}
	return nil
}

// grafovDecode runs grafov's strict decoder, which turns a panic into ErrMalformed: grafov
// slices some tag lines without checking their length (e.g. a bare "#WV-CYPHER-VERSION").
func grafovDecode(data []byte, decoders []m3u8.CustomDecoder) (pl *m3u8.MediaPlaylist, err error) {
	defer func() {
		if r := recover(); r != nil {
			pl, err = nil, fmt.Errorf("%w: decoder panicked: %v", ErrMalformed, r)
		}
	}()
	p, typ, err := m3u8.DecodeWith(bytes.NewReader(data), true, decoders)
	switch {
	case errors.Is(err, ErrMalformed): // from our digestDecoder
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	media, ok := p.(*m3u8.MediaPlaylist)
	if typ != m3u8.MEDIA || !ok { // scan rejects multivariant tags first; kept as a guard
		return nil, ErrNotMedia
	}
	return media, nil
}

// scanner checks a playlist's line structure before grafov sees it. Strict mode in grafov is
// not validation (pitfall #14), and some of its lenience is dangerous for us: it drops a URI
// line that has no EXTINF (shifting every later sequence number), reuses the previous
// segment's duration for "#EXTINF:,", raises TARGETDURATION to ceil(EXTINF) (pitfall #5),
// takes a whitespace-only line after EXTINF as an empty URI, and re-links variants on every
// line of a multivariant playlist (quadratic). scanner rejects all of that, bounds the
// segment count before grafov allocates a segment, and reads TARGETDURATION itself.
type scanner struct {
	withDigests bool // every segment must carry exactly one digest tag

	line           int // current line number, 1-based
	targetDuration int
	sawTD          bool
	segments       int
	inf            bool // an EXTINF is waiting for its URI line
	digests        int  // digest tags since the last URI line
}

// scan checks data and returns its non-blank lines, trimmed, one per "\n": the input grafov
// gets, so that blank lines are really ignored (RFC 8216 §4.1).
func (s *scanner) scan(data []byte) ([]byte, error) {
	clean := make([]byte, 0, len(data))
	for l := range bytes.Lines(data) {
		s.line++
		l = bytes.TrimSpace(l)
		if s.line == 1 && string(l) != "#EXTM3U" {
			return nil, s.malformed("first line is not #EXTM3U")
		}
		if len(l) == 0 {
			continue
		}
		if err := s.check(l); err != nil {
			return nil, err
		}
		clean = append(append(clean, l...), '\n')
	}
	return clean, s.end()
}

// check checks one trimmed, non-blank line.
func (s *scanner) check(l []byte) error {
	switch {
	case l[0] != '#':
		return s.uri()
	case bytes.HasPrefix(l, []byte("#EXTINF:")):
		return s.extinf(l)
	case bytes.HasPrefix(l, []byte("#EXT-X-TARGETDURATION:")):
		return s.targetDurationTag(l)
	case isMultivariantTag(l):
		return fmt.Errorf("%w: line %d: %.40s", ErrNotMedia, s.line, l)
	case isUnsupportedTag(l):
		return s.malformed(fmt.Sprintf("unsupported tag %.40s", l))
	case s.withDigests && bytes.HasPrefix(l, []byte(digestTagName)):
		s.digests++
	}
	return nil
}

func (s *scanner) uri() error {
	switch {
	case !s.inf:
		return s.malformed("URI line without #EXTINF")
	case s.withDigests && s.digests != 1:
		return s.malformed(fmt.Sprintf("segment has %d %s tags, want 1", s.digests, digestTagName))
	}
	s.segments++
	if s.segments > MaxSegments {
		return fmt.Errorf("%w: more than %d", ErrTooManySegments, MaxSegments)
	}
	s.inf, s.digests = false, 0
	return nil
}

func (s *scanner) extinf(l []byte) error {
	if s.inf {
		return s.malformed("second #EXTINF for one segment")
	}
	duration, _, ok := bytes.Cut(l[len("#EXTINF:"):], []byte(","))
	if !ok || len(duration) == 0 {
		return s.malformed("#EXTINF needs a duration and a comma")
	}
	s.inf = true
	return nil
}

func (s *scanner) targetDurationTag(l []byte) error {
	if s.sawTD {
		return s.malformed("second #EXT-X-TARGETDURATION")
	}
	td, err := strconv.ParseUint(string(l[len("#EXT-X-TARGETDURATION:"):]), 10, 32)
	if err != nil || td > maxDuration {
		return s.malformed(fmt.Sprintf("target duration: want an integer in [0, %d]", maxDuration))
	}
	s.targetDuration, s.sawTD = int(td), true
	return nil
}

// end checks what only the end of input can show.
func (s *scanner) end() error {
	switch {
	case s.line == 0:
		return s.malformed("empty input")
	case s.inf:
		return s.malformed("#EXTINF without a URI line")
	case s.digests > 0:
		return s.malformed(digestTagName + " without a segment")
	case !s.sawTD:
		return s.malformed("no #EXT-X-TARGETDURATION")
	}
	return nil
}

func (s *scanner) malformed(what string) error {
	return fmt.Errorf("%w: line %d: %s", ErrMalformed, s.line, what)
}

// isMultivariantTag reports tags that only a multivariant playlist carries.
func isMultivariantTag(l []byte) bool {
	for _, p := range []string{"#EXT-X-STREAM-INF:", "#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-MEDIA:",
		"#EXT-X-SESSION-DATA:", "#EXT-X-SESSION-KEY:"} {
		if bytes.HasPrefix(l, []byte(p)) {
			return true
		}
	}
	return false
}

// isUnsupportedTag reports tags whose meaning a segment list of URIs cannot carry: a byte
// range (the URI alone no longer names the segment's bytes), an init section, and encryption
// other than METHOD=NONE.
func isUnsupportedTag(l []byte) bool {
	if k, ok := bytes.CutPrefix(l, []byte("#EXT-X-KEY:")); ok {
		return m3u8.DecodeAttributeList(string(k))["METHOD"] != "NONE"
	}
	return bytes.HasPrefix(l, []byte("#EXT-X-BYTERANGE:")) || bytes.HasPrefix(l, []byte("#EXT-X-MAP:"))
}
