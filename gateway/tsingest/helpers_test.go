package tsingest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
)

// Streams made with ffmpeg once per test binary, by name.
var (
	streamsMu  sync.Mutex
	streamsDir string
	streams    = map[string][]byte{}
)

// Source recipes: ffmpeg input and codec arguments, H.264/AAC with a keyframe every 2 s
// unless the name says otherwise.
var recipes = map[string][]string{
	"h264": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac"},
	"h264-bframes": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx264", "-preset", "fast", "-bf", "3", "-g", "50", "-c:a", "aac"},
	"h264-gop3": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "75", "-sc_threshold", "0"},
	"h265": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=50:min-keyint=50:scenecut=0:log-level=error", "-c:a", "aac"},
	"aac": {"-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "aac"},
	"mp3": {"-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "libmp3lame"},
	"ac3": {"-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "ac3"},
	// PTS wraps 6 s in: 2^33 ticks is 95443.717 s.
	"h264-wrap": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-output_ts_offset", "95437.7"},
}

// stream returns seconds of the named source as MPEG-TS, made with ffmpeg.
func stream(t testing.TB, name string, seconds int) []byte {
	t.Helper()
	hlstest.RequireTool(t, "ffmpeg") // fails, not skips, in CI
	streamsMu.Lock()
	defer streamsMu.Unlock()
	key := fmt.Sprintf("%s-%d", name, seconds)
	if b, ok := streams[key]; ok {
		return b
	}
	if streamsDir == "" {
		dir, err := os.MkdirTemp("", "tsingest-test-")
		require.NoError(t, err)
		streamsDir = dir
	}
	out := filepath.Join(streamsDir, key+".ts")
	args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, recipes[name]...)
	args = append(args, "-t", fmt.Sprint(seconds), "-f", "mpegts", out)
	if o, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", name, err, o)
	}
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	streams[key] = b
	return b
}

func TestMain(m *testing.M) {
	code := m.Run()
	if streamsDir != "" {
		os.RemoveAll(streamsDir)
	}
	os.Exit(code)
}

// fixedNow is the wall clock the tests run at.
func fixedNow() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }

func newTestSegmenter(td time.Duration) *Segmenter {
	return New(Config{TargetDuration: td, Now: fixedNow})
}

// feed writes b to s in chunks of random sizes (seeded) and returns the segments, with those
// Break returns at the end when brk is set.
func feed(s *Segmenter, b []byte, seed uint64, brk bool) []Segment {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []Segment
	for len(b) > 0 {
		n := min(len(b), 1+r.IntN(3000))
		out = append(out, s.Write(b[:n])...)
		b = b[n:]
	}
	if brk {
		out = append(out, s.Break()...)
	}
	return out
}

// writeSegment saves seg under dir for ffprobe.
func writeSegment(t *testing.T, dir string, seg Segment) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("%d.ts", seg.Seq))
	require.NoError(t, os.WriteFile(p, seg.Data, 0o644))
	return p
}

// probeFirstPacket returns the flags and PTS (seconds, as ffprobe prints them) of the first
// packet of the segment's first stream of the given type ("v" or "a").
func probeFirstPacket(t *testing.T, path, kind string) (flags, pts string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", kind+":0", "-show_entries", "packet=pts_time,flags",
		"-read_intervals", "%+#1", "-of", "csv=p=0", path).Output()
	require.NoError(t, err, "ffprobe %s", path)
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	pts, flags, _ = strings.Cut(line, ",")
	return flags, pts
}

// decodeErrors decodes the TS file with ffmpeg and returns what it printed at level error.
func decodeErrors(t *testing.T, path string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-")
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return stderr.String()
}
