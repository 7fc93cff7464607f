package demosource

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream is segments first..last of src, as a player that plays them in a row reads them.
func stream(src *Source, first, last uint64) []byte {
	var b []byte
	for seq := first; seq <= last; seq++ {
		b = append(b, src.Segment(seq)...)
	}
	return b
}

// TestLoopIsSeamless: across loop points, every PID's continuity counter counts on, and the
// PCR, the video's DTS and the audio's PTS only rise, by one frame at a time at the seam.
func TestLoopIsSeamless(t *testing.T) {
	src, err := New(nil)
	require.NoError(t, err)
	n := uint64(len(src.clip.segs))
	b := stream(src, 0, 3*n-1) // three loops, two seams
	cc := map[uint16]int{}
	last := map[uint16]uint64{} // per PID: the last PES timestamp (DTS, else PTS)
	var pcr uint64
	var pcrs, stamps int
	for off := 0; off < len(b); off += tsPacket {
		p := b[off : off+tsPacket]
		require.Equal(t, byte(0x47), p[0])
		id := pid(p)
		if id == nullPID {
			continue
		}
		if hasPayload(p) {
			got := int(p[3] & 0x0F)
			if prev, ok := cc[id]; ok {
				require.Equal(t, (prev+1)%16, got, "PID %#x at byte %d: continuity counter", id, off)
			}
			cc[id] = got
		}
		payload := 4
		if p[3]&0x20 != 0 {
			if p[4] >= 7 && p[5]&0x10 != 0 {
				v := uint64(p[6])<<25 | uint64(p[7])<<17 | uint64(p[8])<<9 | uint64(p[9])<<1 | uint64(p[10]>>7)
				require.Greater(t, v, pcr, "PCR at byte %d", off)
				pcr, pcrs = v, pcrs+1
			}
			payload = 5 + int(p[4])
		}
		if p[1]&0x40 == 0 || id == 0 {
			continue
		}
		pes := p[payload:]
		if !bytes.HasPrefix(pes, []byte{0, 0, 1}) {
			continue
		}
		field := pes[9:14]
		if pes[7]>>6 == 3 {
			field = pes[14:19]
		}
		v := uint64(field[0]>>1&0x07)<<30 | uint64(field[1])<<22 | uint64(field[2]>>1)<<15 | uint64(field[3])<<7 | uint64(field[4]>>1)
		if prev, ok := last[id]; ok {
			require.Greater(t, v, prev, "PID %#x at byte %d: timestamps rise", id, off)
			require.LessOrEqual(t, v-prev, uint64(pcrHz), "PID %#x at byte %d: no gap", id, off)
		}
		last[id], stamps = v, stamps+1
	}
	assert.Len(t, last, 2, "video and audio")
	assert.Greater(t, pcrs, int(3*n), "PCRs checked")
	assert.Greater(t, stamps, int(3*n)*10, "timestamps checked")
}

// TestFFmpegPlaysAcrossLoops: ffmpeg reads three loops of the source in a row with no
// warning (no corrupt packet, no non-monotonic timestamp) and finds them 3 × 8 s long.
func TestFFmpegPlaysAcrossLoops(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (make deps installs it)")
	}
	src, err := New(nil)
	require.NoError(t, err)
	n := uint64(len(src.clip.segs))
	file := filepath.Join(t.TempDir(), "loops.ts")
	require.NoError(t, os.WriteFile(file, stream(src, 0, 3*n-1), 0o600))
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-hide_banner", "-v", "warning",
		"-i", file, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "ffmpeg warned")
	dur, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-show_entries", "format=duration",
		"-of", "csv=p=0", file).Output()
	require.NoError(t, err)
	assert.Equal(t, "24.0", strings.TrimSpace(string(dur))[:4], "three loops of 8 s")
}
