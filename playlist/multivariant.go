package playlist

import (
	"bytes"
	"fmt"
	"strings"
)

// MaxRenditions bounds the renditions (media playlists) of a multivariant playlist.
const MaxRenditions = 32

// Multivariant is an origin's multivariant playlist, kept line by line so that Rewrite
// changes the rendition URIs and nothing else: tags this package does not know survive.
type Multivariant struct {
	// URIs are the distinct rendition URIs (variant streams, I-frame playlists and
	// EXT-X-MEDIA renditions with a URI), as written, in order of first appearance.
	URIs  []string
	lines []string
	refs  map[int]uriRef // by line index
}

// uriRef says where a line names a rendition: the whole line, or its URI="…" attribute.
type uriRef struct {
	rendition int
	attr      bool
}

// ParseMultivariant parses an origin's multivariant playlist. It returns ErrTooLarge,
// ErrNotMedia's counterpart ErrMalformed for a media playlist or anything else it rejects,
// and bounds the renditions at MaxRenditions.
func ParseMultivariant(data []byte) (*Multivariant, error) {
	if len(data) > MaxPlaylistBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxPlaylistBytes)
	}
	m := &Multivariant{refs: map[int]uriRef{}}
	index := map[string]int{}
	wantURI, variants := false, 0
	for l := range bytes.Lines(data) {
		line := strings.TrimSpace(string(l))
		n := len(m.lines)
		m.lines = append(m.lines, line)
		var err error
		switch {
		case n == 0 && line != "#EXTM3U":
			return nil, fmt.Errorf("%w: first line is not #EXTM3U", ErrMalformed)
		case line == "":
		case strings.HasPrefix(line, "#EXTINF:"), strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			return nil, fmt.Errorf("%w: line %d: a media playlist tag", ErrMalformed, n+1)
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			wantURI, variants = true, variants+1
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"), strings.HasPrefix(line, "#EXT-X-I-FRAME-STREAM-INF:"):
			if uri, ok := attrURI(line); ok {
				err = m.ref(n, uri, true, index)
			}
		case strings.HasPrefix(line, "#"):
		case !wantURI:
			return nil, fmt.Errorf("%w: line %d: a URI without #EXT-X-STREAM-INF", ErrMalformed, n+1)
		default:
			wantURI = false
			err = m.ref(n, line, false, index)
		}
		if err != nil {
			return nil, err
		}
	}
	if wantURI || variants == 0 {
		return nil, fmt.Errorf("%w: no complete #EXT-X-STREAM-INF", ErrMalformed)
	}
	return m, nil
}

func (m *Multivariant) ref(line int, uri string, attr bool, index map[string]int) error {
	if uri == "" {
		return fmt.Errorf("%w: line %d: empty URI", ErrMalformed, line+1)
	}
	i, seen := index[uri]
	if !seen {
		if len(m.URIs) == MaxRenditions {
			return fmt.Errorf("%w: more than %d renditions", ErrMalformed, MaxRenditions)
		}
		i = len(m.URIs)
		index[uri] = i
		m.URIs = append(m.URIs, uri)
	}
	m.refs[line] = uriRef{rendition: i, attr: attr}
	return nil
}

// attrURI returns the value of a tag line's URI="…" attribute.
func attrURI(line string) (string, bool) {
	_, rest, ok := strings.Cut(line, `URI="`)
	if !ok {
		return "", false
	}
	uri, _, ok := strings.Cut(rest, `"`)
	return uri, ok
}

// Rewrite returns the playlist with rendition i's URI replaced by names[i] wherever it is
// named. Every other line is kept as it was. names must have one entry per URI.
func (m *Multivariant) Rewrite(names []string) []byte {
	var b bytes.Buffer
	for n, line := range m.lines {
		if r, ok := m.refs[n]; ok {
			if r.attr {
				old := `URI="` + m.URIs[r.rendition] + `"`
				line = strings.Replace(line, old, `URI="`+names[r.rendition]+`"`, 1)
			} else {
				line = names[r.rendition]
			}
		}
		if line == "" && n == len(m.lines)-1 {
			break
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
