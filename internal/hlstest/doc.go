// Package hlstest holds test helpers that drive real media tools — an ffmpeg-made live HLS
// origin served over HTTP on 127.0.0.1, ffmpeg as an HLS player, live MPEG-TS encoders —
// and FakeLive, a scripted live origin for unit tests.
package hlstest
