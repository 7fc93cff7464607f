package tsingest

import (
	"testing"
	"time"
)

// FuzzSegmenter feeds random, truncated and mangled MPEG-TS in chunks of the given size:
// the segmenter must not panic, must hold a bounded amount, and must only ever emit whole
// packets starting with the PAT. Seeds (testdata/fuzz/FuzzSegmenter) are the starts of
// ffmpeg-made H.264/AAC, H.265 and AAC streams, whole and cut mid-packet.
func FuzzSegmenter(f *testing.F) {
	f.Add([]byte{0x47, 0x40, 0x00, 0x10, 0x00}, uint16(188))
	const maxBytes = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		s := New(Config{TargetDuration: 40 * time.Millisecond, MaxSegmentBytes: maxBytes, Now: fixedNow})
		n := max(int(chunk), 1)
		check := func(segs []Segment) {
			for _, seg := range segs {
				if len(seg.Data)%PacketSize != 0 || len(seg.Data) == 0 || pid(seg.Data) != patPID {
					t.Fatalf("segment %d: %d bytes, starting with PID %d", seg.Seq, len(seg.Data), pid(seg.Data))
				}
				if len(seg.Data) > maxBytes+2*maxSectionPackets*PacketSize {
					t.Fatalf("segment of %d bytes over the bound", len(seg.Data))
				}
			}
			if len(s.in) > 2*PacketSize || len(s.cur) > maxBytes+2*maxSectionPackets*PacketSize || len(s.pes.es) > maxPESScan+PacketSize {
				t.Fatalf("holding %d input, %d segment, %d PES bytes", len(s.in), len(s.cur), len(s.pes.es))
			}
		}
		for len(data) > 0 {
			k := min(n, len(data))
			check(s.Write(data[:k]))
			data = data[k:]
		}
		check(s.Break())
	})
}
