// Package demosource is RawFlow's built-in live source: a 10-second H.264/AAC clip (made
// once with ffmpeg: testsrc2 + a 440 Hz sine, 320x180, 2 s segments) looped as an endless
// live HLS stream, with a discontinuity at every loop. Each segment ends with one MPEG-TS
// null packet (PID 0x1FFF, which demuxers discard) carrying its sequence number and the
// run's random name, so that every segment's bytes and digest are unique, as in a real
// live stream, where a restarted encoder makes new bytes too: without it, each loop would
// repeat the last one's segments and caches keyed by digest would hold the whole stream
// after one loop. It needs neither ffmpeg nor network access, so `rawflow demo` runs
// anywhere.
package demosource
