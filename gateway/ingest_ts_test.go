package gateway

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/rawflow/rawflow/internal/hlstest"
)

// BenchmarkTSListingDelay measures the delay from the bytes that complete a segment (the
// start of the next keyframe) to the segment being listed in the window: segmenting,
// SHA-256 of the segment, rendering both playlist forms. Baseline in the same run: the
// Write calls that complete no segment. Input: 12 s of ffmpeg H.264/AAC in 1316-byte
// chunks (one UDP datagram each).
func BenchmarkTSListingDelay(b *testing.B) {
	ts := hlstest.EncodeTS(b, hlstest.TSH264, 12)
	cfg := Config{SegmentDuration: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.setDefaults()
	const chunk = 1316
	var listing, plain []time.Duration
	for b.Loop() {
		win := newWindow(6, cfg.MaxChannelBytes, 2, LatencyNormal)
		in := newTSIngest(nil, win, &cfg, cfg.Logger, nil)
		for i := 0; i < len(ts); i += chunk {
			start := time.Now()
			listed := in.list(b.Context(), in.seg.Write(ts[i:min(i+chunk, len(ts))]))
			if d := time.Since(start); listed {
				listing = append(listing, d)
			} else {
				plain = append(plain, d)
			}
		}
	}
	if len(listing) == 0 {
		b.Fatal("no segment listed")
	}
	slices.Sort(listing)
	slices.Sort(plain)
	b.ReportMetric(float64(listing[len(listing)/2].Microseconds()), "µs-listing-p50")
	b.ReportMetric(float64(listing[len(listing)*99/100].Microseconds()), "µs-listing-p99")
	b.ReportMetric(float64(plain[len(plain)/2].Nanoseconds())/1000, "µs-other-write-p50")
}
