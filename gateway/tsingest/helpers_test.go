package tsingest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
)

// Streams made with ffmpeg once per test binary, by name and length: a func that encodes
// on its first call and returns the same bytes after, so that tests asking for different
// streams make them at the same time.
var (
	streamsMu sync.Mutex // guards streams
	streams   = map[string]func() ([]byte, error){}
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
	key := fmt.Sprintf("%s-%d", name, seconds)
	streamsMu.Lock()
	encode, ok := streams[key]
	if !ok {
		encode = sync.OnceValues(func() ([]byte, error) { return encodeRecipe(name, seconds) })
		streams[key] = encode
	}
	streamsMu.Unlock()
	b, err := encode()
	require.NoError(t, err, "ffmpeg %s", key)
	return b
}

// encodeRecipe runs ffmpeg on the named recipe for seconds, as fast as it can.
func encodeRecipe(name string, seconds int) ([]byte, error) {
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, recipes[name]...)
	args = append(args, "-t", strconv.Itoa(seconds), "-f", "mpegts", "pipe:1")
	var out, stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return out.Bytes(), nil
}

// skipShort skips a test that runs ffmpeg or ffprobe over and over, or waits for a live
// encode, under -short; the full suite (make test) runs it.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("ffprobe on every segment or a live encode: not in -short")
	}
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
