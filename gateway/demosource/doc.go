// Package demosource is RawFlow's built-in live source: an 8-second H.264/AAC clip (made
// once with ffmpeg by clip/make.sh: testsrc2 and a 440 Hz tone, 320x180, four 2 s segments)
// looped as an endless live HLS stream without a seam: each loop's copy continues the
// timestamps and the continuity counters of the one before (loop.go), so players see one
// continuous stream, as from a real encoder, and no EXT-X-DISCONTINUITY. Each segment ends
// with one MPEG-TS null packet (PID 0x1FFF, which demuxers discard) carrying its sequence
// number and the run's random name, so that every segment's bytes and digest are unique, as
// in a real live stream, where a restarted encoder makes new bytes too: without it, caches
// keyed by digest could hold a segment of an earlier run. It needs neither ffmpeg nor
// network access, so `rawflow demo` runs anywhere.
package demosource
