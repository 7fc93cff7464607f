// Package playlist reads origins' HLS media playlists and writes and reads the gateway's own.
// It is pure: no I/O, no clock, no globals. It is the only importer of github.com/grafov/m3u8.
//
// Three directions:
//
//   - ParseOrigin reads an origin's media playlist into an OriginMedia: what the gateway's
//     ingest needs to fetch new segments.
//
//   - Render writes a Window, the segments the gateway lists for one stream, in one of two
//     forms: ForPlayers is plain HLS; ForProxies adds, immediately before each EXTINF, a tag
//     with the segment's SHA-256 and size, so a proxy can verify bytes it got from a neighbour:
//
//     #EXT-X-RAWFLOW-SEGMENT:DIGEST="<64 lower-case hex>",SIZE=<bytes>
//
//   - ParseGateway reads the ForProxies form back: ParseGateway(Render(w, ForProxies)) equals
//     w when w is consistent (Seqs numbered from MediaSequence, durations with at most three
//     decimals).
//
// # grafov/m3u8: decoding only, behind our own checks
//
// Both parsers decode with grafov (strict mode), after a line scan of our own that makes
// the checks grafov does not make (its strict mode is not validation): the first line is
// #EXTM3U; every URI line has exactly one EXTINF with a duration (grafov silently drops a
// URI without EXTINF, which would shift every later sequence number); exactly one integer
// EXT-X-TARGETDURATION, which is reported as written (grafov raises it to ceil(EXTINF), so
// TARGETDURATION:6 with EXTINF:6.006 would become 7); no multivariant tags; at most
// MaxSegments segments, counted before grafov allocates any. Blank lines are removed before
// grafov sees the input (it takes a whitespace-only line after EXTINF as an empty URI), only
// the first Count() entries of grafov's padded Segments are read, and a panic inside grafov
// becomes ErrMalformed. Durations must lie in [0, 3600] seconds, TARGETDURATION too.
//
// Tags whose meaning a list of segment URIs cannot carry are rejected with ErrMalformed
// rather than silently dropped: EXT-X-BYTERANGE (the URI alone no longer names the bytes),
// EXT-X-MAP (an init section), and EXT-X-KEY other than METHOD=NONE. Other tags grafov does
// not know are ignored.
//
// Render writes the playlist itself with a bytes.Buffer instead of grafov's Encode, because
// Encode has four sharp edges for us: a decoded or new live playlist is cut to its winsize
// oldest segments; TARGETDURATION is ceil'd and raised from EXTINF, while ours is fixed per
// stream; Encode caches its output and is not safe for concurrent use; and custom tags live
// in maps, so their order (and our bytes, and ETags) would vary. A media playlist of five
// tag kinds is a dozen lines of code, deterministic by construction: the same Window and
// Form always give the same bytes.
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
