package playlist

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// The header tags that say where players start: HOLD-BACK, the least distance from the end
// of the playlist a player should start at (draft-pantos-hls-rfc8216bis §4.4.3.8), and
// EXT-X-START, where to start (RFC 8216 §4.3.5.2).
const (
	serverControlTag = "#EXT-X-SERVER-CONTROL"
	startTag         = "#EXT-X-START"
)

// maxHoldBack bounds a HOLD-BACK read: far beyond any sane one (a day), and far from
// overflowing a time.Duration.
const maxHoldBack = 24 * time.Hour

// HoldBack returns the HOLD-BACK attribute of the one EXT-X-SERVER-CONTROL line of header
// (a Window's Header, as ParseGateway reads the gateway's playlists): the decimal seconds
// the gateway wants players to stay behind the live edge. ok is false when there is no such
// line, more than one, or its HOLD-BACK is absent or not a decimal number of seconds in
// [0, 24 h].
func HoldBack(header []string) (hold time.Duration, ok bool) {
	var value string
	n := 0
	for _, l := range header {
		if name, v, _ := strings.Cut(l, ":"); name == serverControlTag {
			value = v
			n++
		}
	}
	if n != 1 {
		return 0, false
	}
	a, err := parseAttrs(value)
	if err != nil {
		return 0, false
	}
	s, ok, err := a.plain("HOLD-BACK")
	if err != nil || !ok || !isDecimal(s) {
		return 0, false
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs > maxHoldBack.Seconds() {
		return 0, false
	}
	return time.Duration(math.Round(secs * float64(time.Second))), true
}

// isDecimal reports whether s is a decimal-floating-point without sign or exponent
// (RFC 8216 §4.2): digits, optionally a '.' and more digits.
func isDecimal(s string) bool {
	whole, frac, _ := strings.Cut(s, ".")
	return whole != "" && allDigits(whole) && allDigits(frac)
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// WithHoldBack returns a copy of header (header itself is never modified) without its
// EXT-X-SERVER-CONTROL and EXT-X-START lines, followed, when hold rounded to the
// millisecond is positive, by
//
//	#EXT-X-SERVER-CONTROL:HOLD-BACK=<s>
//	#EXT-X-START:TIME-OFFSET=-<s>
//
// where <s> is hold in seconds with at most three decimals and no trailing zeros (6, 6.5).
// Players that know HOLD-BACK or EXT-X-START then start hold behind the live edge.
// The other attributes of an origin's EXT-X-SERVER-CONTROL are LL-HLS ones, which do not
// apply to what the gateway serves; an origin's EXT-X-START would contradict HOLD-BACK.
func WithHoldBack(header []string, hold time.Duration) []string {
	out := make([]string, 0, len(header)+2)
	for _, l := range header {
		if name, _, _ := strings.Cut(l, ":"); name != serverControlTag && name != startTag {
			out = append(out, l)
		}
	}
	ms := hold.Round(time.Millisecond).Milliseconds()
	if ms <= 0 {
		return out
	}
	s := formatMillis(ms)
	return append(out, serverControlTag+":HOLD-BACK="+s, startTag+":TIME-OFFSET=-"+s)
}

// formatMillis writes ms milliseconds as seconds with at most three decimals and no
// trailing zeros.
func formatMillis(ms int64) string {
	s := strconv.FormatInt(ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		s += strings.TrimRight("."+strconv.FormatInt(1000+frac, 10)[1:], "0")
	}
	return s
}
