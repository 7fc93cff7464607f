package playlist

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file is the package's one media-playlist decoder, over 400 lines on purpose: every
// tag ParseOrigin and ParseGateway accept, with its limits, in one pass and one switch, so
// that each rule reads next to the others and against RFC 8216 in one place.

// media is a media playlist as ParseOrigin and ParseGateway both read it: checked against
// every limit and rule of this package.
type media struct {
	targetDuration        int // as written, never raised to fit an EXTINF
	mediaSequence         uint64
	discontinuitySequence uint64
	ended                 bool
	version               int
	playlistType          string
	header, trailer       []string
	segs                  []mediaSegment
}

// mediaSegment is one segment with everything in force for it.
type mediaSegment struct {
	uri           string
	duration      float64
	title         string
	discontinuity bool
	rng           *ByteRange // resolved
	init          *Init      // origin form
	initRef       *InitRef   // proxies' form
	key           *Key
	pdt           string
	tags          []string
	digest        digestTag // proxies' form
}

// parser reads a media playlist line by line. One parser serves both forms; proxies
// selects the proxies' form, where every segment needs a digest tag, every EXT-X-MAP an
// init tag, and byte ranges are refused (the gateway serves whole resources).
type parser struct {
	proxies bool

	m                                              media
	line                                           int // current line number, 1-based
	sawTD, sawSeq, sawDiscSeq, sawVersion, sawType bool
	inSegments                                     bool   // tags now belong to segments, not the header
	skipped                                        uint64 // EXT-X-SKIP's SKIPPED-SEGMENTS

	key     *Key       // in force
	keys    int        // EXT-X-KEY tags since the last URI line
	init    *Init      // in force (origin form)
	initRef *InitRef   // in force (proxies' form)
	initTag *digestTag // an init tag on the previous line, waiting for its EXT-X-MAP

	next    mediaSegment // what the tags so far say about the next segment
	inf     bool         // next has its EXTINF
	rng     *rawRange    // next's EXT-X-BYTERANGE, unresolved
	digests int          // digest tags since the last URI line
}

// parseMedia parses data as a media playlist, in the proxies' form if proxies is set.
func parseMedia(data []byte, proxies bool) (*media, error) {
	if len(data) > MaxPlaylistBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxPlaylistBytes)
	}
	p := parser{proxies: proxies}
	for l := range bytes.Lines(data) {
		p.line++
		line := string(bytes.TrimSpace(l))
		switch {
		case p.line == 1 && line != "#EXTM3U":
			return nil, p.malformed("first line is not #EXTM3U")
		case p.line == 1, line == "": // blank lines are ignored (RFC 8216 §4.1)
		default:
			if err := p.parseLine(line); err != nil {
				return nil, err
			}
		}
	}
	return p.end()
}

// parseLine parses one trimmed, non-blank line after the first.
func (p *parser) parseLine(l string) error {
	name, value, _ := strings.Cut(l, ":")
	switch {
	case p.initTag != nil && name != "#EXT-X-MAP":
		return p.malformed(initTagName + " not followed by #EXT-X-MAP")
	case l[0] != '#':
		return p.uri(l)
	case !strings.HasPrefix(l, "#EXT"): // a comment
		return nil
	}
	switch name {
	case "#EXTINF":
		return p.extinf(value)
	case "#EXT-X-TARGETDURATION", "#EXT-X-MEDIA-SEQUENCE", "#EXT-X-DISCONTINUITY-SEQUENCE",
		"#EXT-X-VERSION", "#EXT-X-PLAYLIST-TYPE", "#EXT-X-ENDLIST":
		return p.playlistTag(name, value)
	case "#EXT-X-DISCONTINUITY", "#EXT-X-BYTERANGE", "#EXT-X-KEY", "#EXT-X-MAP", "#EXT-X-PROGRAM-DATE-TIME":
		p.inSegments = true
		return p.segmentTag(name, value)
	case "#EXT-X-DATERANGE", "#EXT-X-GAP", "#EXT-X-BITRATE": // see isVerbatimSegmentTag
		p.inSegments = true
	case "#EXT-X-PART", "#EXT-X-PART-INF", "#EXT-X-PRELOAD-HINT", "#EXT-X-RENDITION-REPORT":
		return nil // LL-HLS: served as regular HLS
	case serverControlTag:
		if !p.proxies {
			return nil // an origin's is LL-HLS; the gateway's own carries HOLD-BACK (see WithHoldBack)
		}
	case "#EXT-X-SKIP":
		return p.skip(value)
	case "#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA", "#EXT-X-SESSION-DATA",
		"#EXT-X-SESSION-KEY":
		return fmt.Errorf("%w: line %d: %.40s", ErrNotMedia, p.line, l)
	case "#EXTM3U":
		return p.malformed("second #EXTM3U")
	}
	if strings.HasPrefix(l, rawflowTagPrefix) {
		return p.rawflowTag(l)
	}
	if p.inSegments {
		p.next.tags = append(p.next.tags, l)
	} else {
		p.m.header = append(p.m.header, l)
	}
	return nil
}

// playlistTag parses the playlist tags that are modelled.
func (p *parser) playlistTag(name, value string) error {
	var err error
	switch name {
	case "#EXT-X-TARGETDURATION":
		err = p.once(&p.sawTD, name)
		if err == nil {
			p.m.targetDuration, err = p.parseInt(value, maxDuration, "target duration")
		}
	case "#EXT-X-MEDIA-SEQUENCE":
		err = p.beforeSegments(&p.sawSeq, name)
		if err == nil {
			p.m.mediaSequence, err = p.parseUint(value, "media sequence")
		}
	case "#EXT-X-DISCONTINUITY-SEQUENCE":
		err = p.beforeSegments(&p.sawDiscSeq, name)
		if err == nil {
			p.m.discontinuitySequence, err = p.parseUint(value, "discontinuity sequence")
		}
	case "#EXT-X-VERSION":
		err = p.once(&p.sawVersion, name)
		if err == nil {
			p.m.version, err = p.parseInt(value, math.MaxInt32, "version")
		}
	case "#EXT-X-PLAYLIST-TYPE":
		err = p.once(&p.sawType, name)
		if err == nil && value != "EVENT" && value != "VOD" {
			err = p.malformed(fmt.Sprintf("playlist type %.20q", value))
		}
		p.m.playlistType = value
	case "#EXT-X-ENDLIST":
		p.m.ended = true
	}
	return err
}

// segmentTag parses the media segment tags that are modelled.
func (p *parser) segmentTag(name, value string) error {
	switch name {
	case "#EXT-X-DISCONTINUITY":
		p.next.discontinuity = true
	case "#EXT-X-BYTERANGE":
		if p.proxies || p.rng != nil {
			return p.malformed("unexpected #EXT-X-BYTERANGE")
		}
		r, err := parseByteRange(value)
		if err != nil {
			return p.wrap(err)
		}
		p.rng = &r
	case "#EXT-X-KEY":
		return p.keyTag(value)
	case "#EXT-X-MAP":
		return p.mapTag(value)
	case "#EXT-X-PROGRAM-DATE-TIME":
		if p.next.pdt != "" || value == "" {
			return p.malformed("want one non-empty #EXT-X-PROGRAM-DATE-TIME per segment")
		}
		p.next.pdt = value
	}
	return nil
}

// keyTag puts a key in force. Several keys in force at once (one per KEYFORMAT) cannot be
// represented and are refused; a second key of the same format replaces the first.
func (p *parser) keyTag(value string) error {
	k, err := parseKey(value)
	if err != nil {
		return p.wrap(err)
	}
	p.keys++
	if p.keys > 1 && keyFormat(k) != keyFormat(p.key) {
		return p.malformed("keys of several KEYFORMATs for one segment are not supported")
	}
	p.key = k
	return nil
}

func keyFormat(k *Key) string {
	if k == nil || k.KeyFormat == "" {
		return "identity"
	}
	return k.KeyFormat
}

// mapTag puts an init section in force; in the proxies' form it takes the init tag on the
// line before.
func (p *parser) mapTag(value string) error {
	in, err := parseMap(value)
	switch {
	case err != nil:
		return p.wrap(err)
	case !p.proxies:
		p.init = in
	case p.initTag == nil:
		return p.malformed("#EXT-X-MAP without " + initTagName)
	case in.Range != nil:
		return p.malformed("#EXT-X-MAP with BYTERANGE")
	default:
		p.initRef = &InitRef{Name: in.URI, Digest: p.initTag.digest, Size: p.initTag.size}
		p.initTag = nil
	}
	return nil
}

// rawflowTag parses our own tags in the proxies' form and drops them from an origin's.
func (p *parser) rawflowTag(l string) error {
	if !p.proxies {
		return nil
	}
	p.inSegments = true
	var err error
	switch {
	case strings.HasPrefix(l, digestTagName):
		p.digests++
		p.next.digest, err = parseDigestTag(l, digestTagName)
	case strings.HasPrefix(l, initTagName):
		var t digestTag
		t, err = parseDigestTag(l, initTagName)
		p.initTag = &t
	default:
		err = fmt.Errorf("%w: unknown tag %.40s", ErrMalformed, l)
	}
	return p.wrap(err)
}

// skip reads a delta update's EXT-X-SKIP (LL-HLS): its segments are not listed, so the
// first listed one is SKIPPED-SEGMENTS later than MEDIA-SEQUENCE says.
func (p *parser) skip(value string) error {
	a, err := parseAttrs(value)
	if err != nil {
		return p.wrap(err)
	}
	n, _, err := a.plain("SKIPPED-SEGMENTS")
	if err != nil {
		return p.wrap(err)
	}
	skipped, err := p.parseUint(n, "skipped segments")
	if err != nil || p.skipped > math.MaxUint64-skipped {
		return p.malformed("bad #EXT-X-SKIP")
	}
	p.skipped += skipped
	return nil
}

func (p *parser) extinf(value string) error {
	if p.inf {
		return p.malformed("second #EXTINF for one segment")
	}
	p.inSegments = true
	d, title, ok := strings.Cut(value, ",")
	if !ok || d == "" {
		return p.malformed("#EXTINF needs a duration and a comma")
	}
	duration, err := strconv.ParseFloat(d, 64)
	if err != nil || math.IsNaN(duration) || duration < 0 || duration > maxDuration {
		return p.malformed(fmt.Sprintf("duration %.20q: want a number in [0, %d]", d, maxDuration))
	}
	p.inf, p.next.duration, p.next.title = true, duration+0, title // +0 turns -0 into 0
	return nil
}

// uri ends a segment: everything pending and in force becomes its.
func (p *parser) uri(l string) error {
	switch {
	case !p.inf:
		return p.malformed("URI line without #EXTINF")
	case p.proxies && p.digests > 1:
		return p.malformed(fmt.Sprintf("segment has %d %s tags, want at most 1", p.digests, digestTagName))
	case len(p.m.segs) == MaxSegments:
		return fmt.Errorf("%w: more than %d", ErrTooManySegments, MaxSegments)
	}
	s := p.next
	s.uri, s.key, s.init, s.initRef = l, p.key, p.init, p.initRef
	if p.rng != nil {
		r, err := p.resolve(l, *p.rng)
		if err != nil {
			return err
		}
		s.rng = r
	}
	p.m.segs = append(p.m.segs, s)
	p.next, p.inf, p.rng, p.digests, p.keys, p.inSegments = mediaSegment{}, false, nil, 0, 0, true
	return nil
}

// resolve makes a segment's byte range absolute. Without "@o" it continues the previous
// segment, which must be a sub-range of the same resource (RFC 8216 §4.3.2.2).
func (p *parser) resolve(uri string, r rawRange) (*ByteRange, error) {
	if r.hasOffset {
		return &ByteRange{Length: r.length, Offset: r.offset}, nil
	}
	n := len(p.m.segs)
	if n == 0 || p.m.segs[n-1].rng == nil || p.m.segs[n-1].uri != uri {
		return nil, p.malformed("byte range without offset, and no previous sub-range of the same URI")
	}
	prev := p.m.segs[n-1].rng
	offset := prev.Offset + prev.Length // cannot overflow: parseByteRange checked
	if offset > math.MaxInt64-r.length {
		return nil, p.malformed("byte range overflows")
	}
	return &ByteRange{Length: r.length, Offset: offset}, nil
}

// end checks what only the end of input can show. Pending tags describe a segment not
// listed yet (an LL-HLS origin's segment in progress): the modelled ones are dropped, as
// they will be listed again before that segment, and verbatim ones become the trailer, or
// the header's tail when no segment is listed.
func (p *parser) end() (*media, error) {
	n := uint64(len(p.m.segs))
	switch {
	case p.line == 0:
		return nil, p.malformed("empty input")
	case p.inf:
		return nil, p.malformed("#EXTINF without a URI line")
	case p.digests > 0:
		return nil, p.malformed(digestTagName + " without a segment")
	case p.initTag != nil:
		return nil, p.malformed(initTagName + " without #EXT-X-MAP")
	case !p.sawTD:
		return nil, p.malformed("no #EXT-X-TARGETDURATION")
	case p.m.mediaSequence > math.MaxUint64-p.skipped,
		n > 0 && p.m.mediaSequence+p.skipped > math.MaxUint64-(n-1):
		return nil, fmt.Errorf("%w: media sequence %d overflows with %d segments", ErrMalformed, p.m.mediaSequence, n)
	}
	p.m.mediaSequence += p.skipped
	if n == 0 {
		p.m.header = append(p.m.header, p.next.tags...)
	} else {
		p.m.trailer = p.next.tags
		p.hoist()
	}
	return &p.m, nil
}

// hoist moves the first segment's leading tags, up to its first media segment tag, to the
// header when none of the tags Render writes before Tags (DISCONTINUITY, KEY, MAP,
// PROGRAM-DATE-TIME) marks where that segment starts: written right after the header, they
// would read back as header tags. The bytes Render writes are the same either way.
func (p *parser) hoist() {
	s := &p.m.segs[0]
	if s.discontinuity || s.key != nil || s.init != nil || s.initRef != nil || s.pdt != "" {
		return
	}
	i := 0
	for i < len(s.tags) && !isVerbatimSegmentTag(s.tags[i]) {
		i++
	}
	if i == 0 {
		return
	}
	p.m.header = append(p.m.header, s.tags[:i]...)
	s.tags = s.tags[i:]
	if len(s.tags) == 0 {
		s.tags = nil
	}
}

// isVerbatimSegmentTag reports the media segment tags kept verbatim in a segment's Tags.
func isVerbatimSegmentTag(l string) bool {
	name, _, _ := strings.Cut(l, ":")
	return name == "#EXT-X-DATERANGE" || name == "#EXT-X-GAP" || name == "#EXT-X-BITRATE"
}

// once checks that a playlist tag appears at most once.
func (p *parser) once(saw *bool, name string) error {
	if *saw {
		return p.malformed("second " + name)
	}
	*saw = true
	return nil
}

// beforeSegments is once for the tags that number segments and so must precede them.
func (p *parser) beforeSegments(saw *bool, name string) error {
	if len(p.m.segs) > 0 {
		return p.malformed(name + " after a segment")
	}
	return p.once(saw, name)
}

func (p *parser) parseUint(s, what string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, p.malformed(fmt.Sprintf("%s %.30q: want a decimal integer", what, s))
	}
	return v, nil
}

func (p *parser) parseInt(s string, limit uint64, what string) (int, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > limit {
		return 0, p.malformed(fmt.Sprintf("%s %.30q: want an integer in [0, %d]", what, s, limit))
	}
	return int(v), nil
}

func (p *parser) malformed(what string) error {
	return fmt.Errorf("%w: line %d: %s", ErrMalformed, p.line, what)
}

// wrap adds the line number to an error (nil stays nil).
func (p *parser) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("line %d: %w", p.line, err)
}
