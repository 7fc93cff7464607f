// Package simplayer is a simulated live HLS viewer: it requests a stream the way hls.js
// does, over real HTTP, and measures what a viewer would experience: start-up (join) time,
// stalls (how many, how long), latency behind live, bytes and failed requests. The swarm
// benchmark (package loadtest, `rawflow swarm`) plays each of its proxies with one Player;
// end-to-end tests use it as a light, deterministic player.
//
// # Requests
//
// Run loads the playlist (picking one variant of a multivariant playlist), starts
// LiveSyncSegments segments behind the live end (at the first segment of an ended
// playlist), then fetches segments one at a time in media-sequence order while less than
// MaxBuffer is buffered. A live playlist is reloaded a target duration after the previous
// load was requested, or half of one when that load listed no new segment. A segment that
// is not listed yet is waited for; one that has left the window is given up: the player
// jumps to the live sync point and counts a skip. A failed segment request is tried again
// (three tries in all), then the segment is given up. An EXT-X-MAP init section is fetched
// when it changes. With CMCD set, segment requests carry a CMCD query parameter as hls.js
// sends it.
//
// # Playback model
//
// Playback is not decoded: it is a clock over a queue of buffered segments, advanced
// lazily from timestamps whenever something happens (a segment arrives, a playlist loads,
// Result is called), so no goroutine ticks and a fake clock (testing/synctest) drives it
// exactly. Playback starts when the first segment is fully downloaded. From then the
// playhead moves in real time through the buffered segments; a gap between them (a segment
// given up, a skip) is jumped at once. When the buffer runs dry before the stream ended, a
// stall begins, and it ends as soon as one more segment is buffered. Media time is the
// player's own: the first listed segment starts at 0 and each segment at the end of the
// one before; a window that shares no segment with the previous one is placed after it,
// a target duration per missing sequence number.
//
// # Limits
//
// One variant is played, without adaptive switching and without separate audio or
// subtitle renditions. Segments are fetched sequentially and the playlist is reloaded
// between segment downloads, not during one. Keys are not fetched and nothing is decrypted
// or decoded: media is taken to be as long as its EXTINF says. LL-HLS parts are ignored
// (the playlist package keeps full segments only).
package simplayer
