package playlist

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/grafov/m3u8"
)

// digestTagName starts the proxies' per-segment tag, written immediately before the
// segment's EXTINF line:
//
//	#EXT-X-RAWFLOW-SEGMENT:DIGEST="<64 lower-case hex>",SIZE=<bytes>
const digestTagName = "#EXT-X-RAWFLOW-SEGMENT:"

// digestTag is a segment's digest tag. It is a grafov CustomTag so that ParseGateway can let
// grafov attach it to its segment; Render writes String itself.
type digestTag struct {
	digest Digest
	size   int64
}

var (
	_ m3u8.CustomTag     = digestTag{}
	_ m3u8.CustomDecoder = digestDecoder{}
)

// TagName implements m3u8.CustomTag.
func (digestTag) TagName() string { return digestTagName }

// Encode implements m3u8.CustomTag.
func (t digestTag) Encode() *bytes.Buffer { return bytes.NewBufferString(t.String()) }

// String returns the tag line without its newline.
func (t digestTag) String() string {
	return fmt.Sprintf(`%sDIGEST="%s",SIZE=%d`, digestTagName, t.digest, t.size)
}

// parseDigestTag parses exactly the String form (the attribute order included: we write
// the tag ourselves, so any other form is not ours).
func parseDigestTag(line string) (digestTag, error) {
	rest, ok := strings.CutPrefix(line, digestTagName+`DIGEST="`)
	hexDigest, size, ok2 := strings.Cut(rest, `",SIZE=`)
	if !ok || !ok2 {
		return digestTag{}, fmt.Errorf("%w: %.100q: want %sDIGEST=\"…\",SIZE=…", ErrMalformed, line, digestTagName)
	}
	d, err := ParseDigest(hexDigest)
	if err != nil {
		return digestTag{}, err
	}
	n, err := strconv.ParseUint(size, 10, 63)
	if err != nil {
		return digestTag{}, fmt.Errorf("%w: digest tag size %.30q", ErrMalformed, size)
	}
	return digestTag{digest: d, size: int64(n)}, nil
}

// digestDecoder is the grafov CustomDecoder of digestTag.
type digestDecoder struct{}

// TagName implements m3u8.CustomDecoder.
func (digestDecoder) TagName() string { return digestTagName }

// SegmentTag implements m3u8.CustomDecoder: the tag belongs to the next segment.
func (digestDecoder) SegmentTag() bool { return true }

// Decode implements m3u8.CustomDecoder.
func (digestDecoder) Decode(line string) (m3u8.CustomTag, error) { return parseDigestTag(line) }
