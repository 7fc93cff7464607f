// Package tsingest turns a continuous MPEG-TS stream (one program of it) into HLS segments:
// the gateway connects to a broadcaster's media server over HTTP, UDP or SRT (see Open) and
// feeds what it reads to a Segmenter.
//
// The segmenter passes packets through as they came: it never remuxes, so continuity
// counters and timestamps run on from one segment to the next, and the bytes are the
// source's. Each segment starts with the PAT and the PMT (the in-stream copies, null packets
// and DVB SI are dropped), then a random access point: an IDR (H.264) or IRAP (H.265)
// picture on the first video stream, or any PES packet of the first audio stream when
// there is no video (AAC, MP3, AC-3).
//
// Segment boundaries and sequence numbers are derived from the source's timestamps, so that
// gateways ingesting the same source list the same media under the same numbers: the
// timeline is cut into cells of the target duration, and a segment starts at the first
// random access point of each new cell; the first segment's number is its cell's index
// (33-bit PTS unwrapped against the wall clock, see Segmenter.anchor), later ones follow on
// by one. With a GOP that fits the target duration every cell holds a cut, so the numbers
// stay equal to the cell index; a GOP that does not fit is warned about (Stats.Misfits).
//
// Libraries: github.com/asticode/go-astits parses the PSI tables (section syntax, CRC
// checks), the part of MPEG-TS where hand-written parsers go wrong. Packet headers, PES
// timestamps and NAL unit types are read in place, because the segmenter must keep every
// packet's bytes as they came and astits's demuxer reassembles and copies them;
// github.com/bluenviron/mediacommon, which would have parsed the codecs, and every Go SRT
// library (datarhei/gosrt, haivision/srtgo) cannot be fetched through this build's module
// proxy, so SRT is this package's internal/srt, written here for its receiving side.
package tsingest
