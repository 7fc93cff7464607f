package playlist

import (
	"fmt"
	"strings"
)

// attr is one attribute value of an attribute list, its quotes removed.
type attr struct {
	value  string
	quoted bool // written as a quoted-string
}

// attrs is a parsed attribute list (RFC 8216 §4.2), by attribute name.
type attrs map[string]attr

// parseAttrs parses an attribute list strictly: NAME=value pairs separated by commas (a
// space after a comma is tolerated), names of [A-Z0-9-], each name at most once, values
// either a quoted-string, which may contain commas but no '"', CR or LF, or a non-empty
// unquoted run up to the next comma.
//
// grafov's DecodeAttributeList is not used: it finds pairs with a regular expression
// anywhere in the line, so it accepts garbage between pairs, keeps the last of duplicate
// names, cannot read an empty quoted-string, and forgets whether a value was quoted.
func parseAttrs(s string) (attrs, error) {
	a := attrs{}
	for len(s) > 0 {
		name, rest, ok := strings.Cut(s, "=")
		if !ok || !isAttrName(name) {
			return nil, fmt.Errorf("%w: attribute list: bad name at %.40q", ErrMalformed, s)
		}
		if _, dup := a[name]; dup {
			return nil, fmt.Errorf("%w: attribute list: %s twice", ErrMalformed, name)
		}
		v, rest, err := cutAttrValue(rest)
		if err != nil {
			return nil, err
		}
		a[name] = v
		if rest == "" {
			break
		}
		if rest[0] != ',' || len(rest) == 1 {
			return nil, fmt.Errorf("%w: attribute list: want ',' and an attribute at %.40q", ErrMalformed, rest)
		}
		s = strings.TrimLeft(rest[1:], " ")
	}
	return a, nil
}

// cutAttrValue cuts the value at the start of s and returns it and what follows it.
func cutAttrValue(s string) (attr, string, error) {
	if q, ok := strings.CutPrefix(s, `"`); ok {
		v, rest, ok := strings.Cut(q, `"`)
		if !ok || strings.ContainsAny(v, "\r\n") {
			return attr{}, "", fmt.Errorf("%w: attribute list: unterminated quoted-string", ErrMalformed)
		}
		return attr{value: v, quoted: true}, rest, nil
	}
	end := strings.IndexByte(s, ',')
	if end < 0 {
		end = len(s)
	}
	v, rest := s[:end], s[end:]
	if v == "" || strings.ContainsAny(v, `" `) {
		return attr{}, "", fmt.Errorf("%w: attribute list: bad value %.40q", ErrMalformed, v)
	}
	return attr{value: v}, rest, nil
}

func isAttrName(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return s != ""
}

// quoted returns attribute name, which must be a quoted-string if present.
func (a attrs) quoted(name string) (string, bool, error) {
	v, ok := a[name]
	if ok && !v.quoted {
		return "", false, fmt.Errorf("%w: attribute %s must be a quoted-string", ErrMalformed, name)
	}
	return v.value, ok, nil
}

// plain returns attribute name, which must not be quoted if present.
func (a attrs) plain(name string) (string, bool, error) {
	v, ok := a[name]
	if ok && v.quoted {
		return "", false, fmt.Errorf("%w: attribute %s must not be quoted", ErrMalformed, name)
	}
	return v.value, ok, nil
}
