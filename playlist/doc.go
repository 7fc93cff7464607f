// Package playlist reads origins' HLS media playlists and writes and reads the gateway's own.
// It is pure: no I/O, no clock, no globals.
//
// Three directions:
//
//   - ParseOrigin reads an origin's media playlist into an OriginMedia: what the gateway's
//     ingest needs to fetch new segments, and everything it must pass on to its own playlist.
//
//   - Render writes a Window, the segments the gateway lists for one stream, in one of two
//     forms: ForPlayers is plain HLS; ForProxies adds a tag with the SHA-256 and size of each
//     segment (before its EXTINF) and of each init section (immediately before its EXT-X-MAP),
//     so a proxy can verify bytes it got from a neighbour:
//
//     #EXT-X-RAWFLOW-SEGMENT:DIGEST="<64 lower-case hex>",SIZE=<bytes>
//     #EXT-X-RAWFLOW-INIT:DIGEST="<64 lower-case hex>",SIZE=<bytes>
//
//   - ParseGateway reads the ForProxies form back: ParseGateway(Render(w, ForProxies)) equals
//     w when w is consistent (Seqs numbered from MediaSequence, durations with at most three
//     decimals, Version 0 or above MinVersion(w), no nil Init after a non-nil one, Tags,
//     Header and Trailer holding only unmodelled tags).
//
// # Parsing: one line scanner, our own
//
// Both parsers are one line-based parser (decode.go). It checks what a gateway relies on:
// the first line is #EXTM3U; every URI line has exactly one EXTINF with a duration in
// [0, 3600]; exactly one integer EXT-X-TARGETDURATION in [0, 3600], reported as written
// (never raised to fit an EXTINF); MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE before the
// first segment and not overflowing; no multivariant tags (ErrNotMedia); at most
// MaxSegments segments and MaxPlaylistBytes bytes. Blank lines and comments (lines starting
// with '#' but not "#EXT") are dropped; lines are trimmed.
//
// Modelled tags, each checked: EXTINF (duration and title), EXT-X-BYTERANGE, -DISCONTINUITY,
// -KEY, -MAP, -PROGRAM-DATE-TIME (kept verbatim), -TARGETDURATION, -MEDIA-SEQUENCE,
// -DISCONTINUITY-SEQUENCE, -VERSION, -PLAYLIST-TYPE (EVENT or VOD) and -ENDLIST.
// Attribute lists are parsed strictly (RFC 8216 §4.2: quoted-strings may hold commas;
// duplicate names are refused).
//
//   - EXT-X-KEY and EXT-X-MAP stay in force until the next one (across discontinuities);
//     every segment carries the ones in force as *Key and *Init. METHOD=NONE is a nil Key;
//     METHOD must be NONE, AES-128 or SAMPLE-AES; keys of several KEYFORMATs in force at once
//     are refused. The init section is taken to be under the key in force for its segment.
//   - A byte range without "@o" is resolved to the byte after the previous segment's
//     sub-range, which must be of the same URI; a MAP's BYTERANGE needs an explicit offset.
//
// Every other #EXT tag is kept verbatim, in order, by this rule: tags before the first media
// segment tag (EXTINF, BYTERANGE, DISCONTINUITY, KEY, MAP, PROGRAM-DATE-TIME, DATERANGE,
// GAP, BITRATE) go to Header; from then on every unmodelled tag goes to the Tags of the
// segment whose URI line follows it; those after the last URI line go to Trailer (to
// Header when no segment is listed). One exception keeps Render's output readable back
// the same way: when the first segment has no DISCONTINUITY, KEY (other than NONE), MAP or
// PROGRAM-DATE-TIME, its tags before its first DATERANGE, GAP or BITRATE go to Header,
// since nothing written before them would mark them as the segment's. Modelled tags after the last URI line describe a
// segment not listed yet and are dropped: they will be listed again before it.
//
// LL-HLS origins are served as regular HLS: EXT-X-PART, -PART-INF, -SERVER-CONTROL,
// -PRELOAD-HINT and -RENDITION-REPORT are dropped and only full segments kept. (ParseGateway
// keeps EXT-X-SERVER-CONTROL verbatim: the gateway's own says its HOLD-BACK, which proxies
// read with HoldBack; WithHoldBack writes it, with a matching EXT-X-START.) An
// EXT-X-SKIP (a delta update, which the gateway never asks for) is dropped too, and its
// SKIPPED-SEGMENTS added to MediaSequence so that Seqs stay right (DiscontinuitySequence
// cannot be corrected for discontinuities among the skipped segments).
//
// ParseOrigin drops tags starting with #EXT-X-RAWFLOW-, which are ours alone. ParseGateway
// requires one digest tag per segment and one init tag right before each EXT-X-MAP, and
// refuses byte ranges (the gateway serves whole resources).
//
// # grafov/m3u8: not used for decoding or encoding
//
// The project prescribes grafov/m3u8 for playlists, but its decoder loses what a
// pass-through gateway must keep, so no production code here uses it any more. It drops
// unknown tags (pitfall #9: DATERANGE, GAP, BITRATE, DEFINE, INDEPENDENT-SEGMENTS in media
// playlists, LL-HLS), keeps only the first EXT-X-MAP (#6), writes the first key twice (#7),
// turns an omitted byte-range offset into @0 (#8), raises TARGETDURATION (#5), pads Segments
// with nil (#2) and truncates live playlists to 8 segments on encode (#1); its strict mode
// is not validation (#14) and its attribute-list reader accepts garbage between pairs and
// cannot read an empty quoted-string. The pitfall numbers are those of the project's
// research notes; TestPitfall<N>… in pitfall_test.go covers each that applies. grafov
// remains a test dependency: its DecodeAttributeList is the oracle that attrs_test.go checks
// our attribute-list parser against.
//
// Render writes the playlist itself with a bytes.Buffer: deterministic by construction (the
// same Window and Form always give the same bytes, so ETags are stable), uncached and safe
// for concurrent use, TARGETDURATION as given, and EXT-X-VERSION the larger of
// Window.Version and MinVersion.
//
// # Example
//
//	data := []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:17\n#EXTINF:2.000,\nseg_00017.ts\n")
//	m, err := playlist.ParseOrigin(data) // m.Segments[0]: {Seq: 17, URI: "seg_00017.ts", Duration: 2}
//	if err != nil {
//		return err
//	}
//	body := fetch(m.Segments[0].URI)
//	d := playlist.Sum(body)
//	w := playlist.Window{TargetDuration: m.TargetDuration, MediaSequence: 17, Segments: []playlist.Segment{{
//		Seq: 17, Name: playlist.SegmentName(17, d, ".ts"), Duration: 2, Digest: d, Size: int64(len(body)),
//	}}}
//	forPlayers := playlist.Render(w, playlist.ForPlayers)
//	forProxies := playlist.Render(w, playlist.ForProxies)
package playlist
