package playlist

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteRange is a sub-range of a resource. Offset is always absolute: ParseOrigin resolves an
// omitted "@o" to the byte after the previous sub-range of the same URI (ErrMalformed if there
// is none), never to 0 (grafov pitfall #8).
type ByteRange struct{ Length, Offset int64 }

// Key is an EXT-X-KEY in force. METHOD=NONE is represented as a nil *Key. Fields hold the
// attribute values as written, quotes removed; empty means absent. Without IV, an AES-128
// segment's IV is its media sequence number (RFC 8216 §5.2), so the gateway must keep the
// numbering or add an IV. Segments under one tag share one *Key: replace it, do not modify it.
type Key struct{ Method, URI, IV, KeyFormat, KeyFormatVersions string }

// Init is an EXT-X-MAP in force (origin side). Segments under one tag share one *Init.
type Init struct {
	URI   string
	Range *ByteRange // BYTERANGE attribute, whose offset must be explicit; nil if none
}

// rawRange is an EXT-X-BYTERANGE value before its offset is resolved.
type rawRange struct {
	length, offset int64
	hasOffset      bool
}

// parseByteRange parses "<n>[@<o>]".
func parseByteRange(s string) (rawRange, error) {
	n, o, hasOffset := strings.Cut(s, "@")
	r := rawRange{hasOffset: hasOffset}
	var err error
	if r.length, err = strconv.ParseInt(n, 10, 64); err != nil || r.length < 0 {
		return rawRange{}, fmt.Errorf("%w: byte range %.40q", ErrMalformed, s)
	}
	if hasOffset {
		if r.offset, err = strconv.ParseInt(o, 10, 64); err != nil || r.offset < 0 {
			return rawRange{}, fmt.Errorf("%w: byte range %.40q", ErrMalformed, s)
		}
	}
	if r.offset > math.MaxInt64-r.length {
		return rawRange{}, fmt.Errorf("%w: byte range %.40q overflows", ErrMalformed, s)
	}
	return r, nil
}

// parseKey parses an EXT-X-KEY attribute list; METHOD=NONE gives nil. Attributes other
// than the five Key holds are ignored.
func parseKey(list string) (*Key, error) {
	a, err := parseAttrs(list)
	if err != nil {
		return nil, err
	}
	method, _, err := a.plain("METHOD")
	switch {
	case err != nil:
		return nil, err
	case method == "NONE":
		if len(a) != 1 { // RFC 8216 §4.3.2.4: other attributes MUST NOT be present
			return nil, fmt.Errorf("%w: METHOD=NONE with other attributes", ErrMalformed)
		}
		return nil, nil
	case method != "AES-128" && method != "SAMPLE-AES":
		return nil, fmt.Errorf("%w: key method %.20q", ErrMalformed, method)
	}
	k := &Key{Method: method}
	uri, ok, err := a.quoted("URI")
	if err != nil || !ok || uri == "" {
		return nil, fmt.Errorf("%w: %s key without URI", ErrMalformed, method)
	}
	k.URI = uri
	if k.IV, _, err = a.plain("IV"); err != nil || (k.IV != "" && !isIV(k.IV)) {
		return nil, fmt.Errorf("%w: key IV %.40q: want 0x and 1 to 32 hex digits", ErrMalformed, k.IV)
	}
	if k.KeyFormat, _, err = a.quoted("KEYFORMAT"); err != nil {
		return nil, err
	}
	if k.KeyFormatVersions, _, err = a.quoted("KEYFORMATVERSIONS"); err != nil {
		return nil, err
	}
	return k, nil
}

func isIV(s string) bool {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		h, ok = strings.CutPrefix(s, "0X")
	}
	return ok && len(h) >= 1 && len(h) <= 32 && strings.Trim(h, "0123456789abcdefABCDEF") == ""
}

// keyLine is the EXT-X-KEY line (without newline) that puts k in force; nil is METHOD=NONE.
func keyLine(k *Key) string {
	if k == nil {
		return "#EXT-X-KEY:METHOD=NONE"
	}
	var b strings.Builder
	b.WriteString("#EXT-X-KEY:METHOD=" + k.Method + `,URI="` + k.URI + `"`)
	if k.IV != "" {
		b.WriteString(",IV=" + k.IV)
	}
	if k.KeyFormat != "" {
		b.WriteString(`,KEYFORMAT="` + k.KeyFormat + `"`)
	}
	if k.KeyFormatVersions != "" {
		b.WriteString(`,KEYFORMATVERSIONS="` + k.KeyFormatVersions + `"`)
	}
	return b.String()
}

// parseMap parses an EXT-X-MAP attribute list. Attributes other than URI and BYTERANGE are
// ignored. A BYTERANGE must have an explicit offset (draft-pantos-hls-rfc8216bis §4.4.4.5):
// unlike a segment's, it has no previous sub-range to continue.
func parseMap(list string) (*Init, error) {
	a, err := parseAttrs(list)
	if err != nil {
		return nil, err
	}
	uri, ok, err := a.quoted("URI")
	if err != nil || !ok || uri == "" {
		return nil, fmt.Errorf("%w: EXT-X-MAP without URI", ErrMalformed)
	}
	in := &Init{URI: uri}
	br, ok, err := a.quoted("BYTERANGE")
	if err != nil || !ok {
		return in, err
	}
	r, err := parseByteRange(br)
	if err != nil {
		return nil, err
	}
	if !r.hasOffset {
		return nil, fmt.Errorf("%w: EXT-X-MAP BYTERANGE %.40q without offset", ErrMalformed, br)
	}
	in.Range = &ByteRange{Length: r.length, Offset: r.offset}
	return in, nil
}
