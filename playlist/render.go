package playlist

import (
	"bytes"
	"fmt"
)

// Render writes w as an HLS media playlist. The same Window and Form always give the same
// bytes. Render trusts w and checks nothing: MediaSequence is written as is and should equal
// Segments[0].Seq; segment Seqs are not written (a reader numbers segments from
// MEDIA-SEQUENCE); Names, Titles, Tags and the rest must be single lines, Names and
// Init.Names must not start with '#', and Tags, Header and Trailer must be tags that are
// not modelled (ParseGateway gives them back only then).
//
// The header is EXTM3U, EXT-X-VERSION (see MinVersion), TARGETDURATION, MEDIA-SEQUENCE,
// DISCONTINUITY-SEQUENCE when it is non-zero or a segment is discontinuous (which keeps a
// plain live playlist as short as ffmpeg's), PLAYLIST-TYPE when set, then Header. Each
// segment is written as:
//
//	#EXT-X-DISCONTINUITY                  if Discontinuity
//	#EXT-X-KEY:…                          if Key differs from the previous segment's (nil: METHOD=NONE)
//	#EXT-X-RAWFLOW-INIT:DIGEST=…,SIZE=…   ForProxies, with the MAP line
//	#EXT-X-MAP:URI="<Init.Name>"          if Init differs from the previous segment's, or after a discontinuity
//	#EXT-X-PROGRAM-DATE-TIME:…            if set
//	Tags…
//	#EXT-X-RAWFLOW-SEGMENT:DIGEST=…,SIZE=… ForProxies
//	#EXTINF:<duration, three decimals>,<Title>
//	<Name>
//
// then Trailer and EXT-X-ENDLIST if Ended. A nil Init after a non-nil one cannot be written
// (an init section stays in force until the next EXT-X-MAP); a reader gets the previous
// one. Any Form other than ForProxies renders as ForPlayers.
func Render(w Window, f Form) []byte {
	var b bytes.Buffer
	b.Grow(128 + len(w.Segments)*(48+len(digestTagName)+96))
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n",
		max(w.Version, MinVersion(w)), w.TargetDuration, w.MediaSequence)
	if w.DiscontinuitySequence != 0 || anyDiscontinuity(w.Segments) {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", w.DiscontinuitySequence)
	}
	if w.PlaylistType != "" {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:" + w.PlaylistType + "\n")
	}
	writeLines(&b, w.Header)
	var key *Key
	var init *InitRef
	for _, s := range w.Segments {
		renderSegment(&b, s, f, !sameKey(s.Key, key), s.Init != nil && (s.Discontinuity || !sameInit(s.Init, init)))
		key, init = s.Key, s.Init
	}
	writeLines(&b, w.Trailer)
	if w.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

// renderSegment writes one segment's lines, its key and init section if asked to.
func renderSegment(b *bytes.Buffer, s Segment, f Form, writeKey, writeInit bool) {
	if s.Discontinuity {
		b.WriteString("#EXT-X-DISCONTINUITY\n")
	}
	if writeKey {
		b.WriteString(keyLine(s.Key) + "\n")
	}
	if writeInit {
		if f == ForProxies {
			b.WriteString(digestTag{digest: s.Init.Digest, size: s.Init.Size}.line(initTagName) + "\n")
		}
		b.WriteString(`#EXT-X-MAP:URI="` + s.Init.Name + "\"\n")
	}
	if s.ProgramDateTime != "" {
		b.WriteString("#EXT-X-PROGRAM-DATE-TIME:" + s.ProgramDateTime + "\n")
	}
	writeLines(b, s.Tags)
	if f == ForProxies && s.Size > 0 { // Size 0: not held yet, no digest to give
		b.WriteString(digestTag{digest: s.Digest, size: s.Size}.line(digestTagName) + "\n")
	}
	fmt.Fprintf(b, "#EXTINF:%.3f,%s\n%s\n", s.Duration, s.Title, s.Name)
}

// MinVersion is the EXT-X-VERSION that the features of w that Render models need
// (RFC 8216 §7): 3 for the decimal EXTINF durations always written; 5 with a SAMPLE-AES key
// or a KEYFORMAT or KEYFORMATVERSIONS attribute; 6 with an EXT-X-MAP (the playlist is not
// I-frames only, as far as Render knows). An IV needs 2 and is covered by 3. Byte ranges
// (4) are never written. What verbatim Header and Tags need is Window.Version's job.
func MinVersion(w Window) int {
	v := 3
	for _, s := range w.Segments {
		if s.Init != nil {
			return 6
		}
		if k := s.Key; k != nil && (k.Method == "SAMPLE-AES" || k.KeyFormat != "" || k.KeyFormatVersions != "") {
			v = 5
		}
	}
	return v
}

func writeLines(b *bytes.Buffer, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
}

func sameKey(a, b *Key) bool { return a == b || (a != nil && b != nil && *a == *b) }

func sameInit(a, b *InitRef) bool { return a == b || (a != nil && b != nil && *a == *b) }

func anyDiscontinuity(segs []Segment) bool {
	for _, s := range segs {
		if s.Discontinuity {
			return true
		}
	}
	return false
}
