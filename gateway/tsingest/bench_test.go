package tsingest

import (
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkSegmenter measures segmenting CPU against a baseline in the same run: SHA-256
// over the same bytes, which the gateway computes for every segment anyway. Input: 12 s of
// ffmpeg H.264/AAC (320x240), written in 1316-byte chunks (7 packets, one UDP datagram).
// "cpu%@10Mbit/s" is the share of one core that segmenting a 10 Mbit/s stream takes.
func BenchmarkSegmenter(b *testing.B) {
	ts := stream(b, "h264", 12)
	const chunk = 1316
	report := func(b *testing.B) {
		perByte := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(len(ts))
		b.ReportMetric(perByte*10e6/8/1e9*100, "cpu%@10Mbit/s")
	}
	b.Run("segment", func(b *testing.B) {
		b.SetBytes(int64(len(ts)))
		b.ReportAllocs()
		for b.Loop() {
			s := New(Config{TargetDuration: 2 * time.Second, Now: fixedNow})
			for i := 0; i < len(ts); i += chunk {
				s.Write(ts[i:min(i+chunk, len(ts))])
			}
		}
		report(b)
	})
	b.Run("baseline-sha256", func(b *testing.B) {
		b.SetBytes(int64(len(ts)))
		for b.Loop() {
			h := sha256.New()
			for i := 0; i < len(ts); i += chunk {
				h.Write(ts[i:min(i+chunk, len(ts))])
			}
			h.Sum(nil)
		}
		report(b)
	})
}
