package playlist

import (
	"fmt"
	"strconv"
	"strings"
)

// The proxies' form names the bytes of every segment and init section with one of two tags.
// The segment tag is written before the segment's EXTINF line, the init tag immediately
// before its EXT-X-MAP line:
//
//	#EXT-X-RAWFLOW-SEGMENT:DIGEST="<64 lower-case hex>",SIZE=<bytes>
//	#EXT-X-RAWFLOW-INIT:DIGEST="<64 lower-case hex>",SIZE=<bytes>
//
// Tags starting with rawflowTagPrefix are ours: ParseOrigin drops them, so an origin (or
// another gateway) can never smuggle a digest into what we list.
const (
	digestTagName    = "#EXT-X-RAWFLOW-SEGMENT:"
	initTagName      = "#EXT-X-RAWFLOW-INIT:"
	rawflowTagPrefix = "#EXT-X-RAWFLOW-"
)

// digestTag is a digest tag's value.
type digestTag struct {
	digest Digest
	size   int64
}

// line returns the tag line with the given name, without newline.
func (t digestTag) line(name string) string {
	return fmt.Sprintf(`%sDIGEST="%s",SIZE=%d`, name, t.digest, t.size)
}

// parseDigestTag parses exactly the line form (the attribute order included: we write the
// tag ourselves, so any other form is not ours).
func parseDigestTag(line, name string) (digestTag, error) {
	rest, ok := strings.CutPrefix(line, name+`DIGEST="`)
	hexDigest, size, ok2 := strings.Cut(rest, `",SIZE=`)
	if !ok || !ok2 {
		return digestTag{}, fmt.Errorf("%w: %.100q: want %sDIGEST=\"…\",SIZE=…", ErrMalformed, line, name)
	}
	d, err := ParseDigest(hexDigest)
	if err != nil {
		return digestTag{}, err
	}
	n, err := strconv.ParseUint(size, 10, 63)
	if err != nil || n == 0 { // no object is empty; Render writes no tag for one not held
		return digestTag{}, fmt.Errorf("%w: digest tag size %.30q: want a positive number", ErrMalformed, size)
	}
	return digestTag{digest: d, size: int64(n)}, nil
}
