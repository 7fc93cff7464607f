// Package hlstest holds test helpers that drive real media tools: an ffmpeg-made live HLS
// origin served over HTTP on 127.0.0.1, and ffmpeg as an HLS player.
package hlstest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// RequireTool skips the test when name is not on PATH, or fails it when CI or
// RAWFLOW_REQUIRE_TOOLS is set (there, a missing tool is a broken setup, not a reason to skip).
func RequireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("CI") != "" || os.Getenv("RAWFLOW_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s not found on PATH (run the README's test command, which installs it)", name)
	}
	t.Skipf("%s not found on PATH; run the README's test command to install it", name)
}

// Origin is a live HLS origin: ffmpeg encodes testsrc2 + sine (H.264/AAC, 2 s GOP) into
// 2 s MPEG-TS segments in a temp dir, served by an httptest server.
type Origin struct {
	// URL is the live media playlist's URL.
	URL string
	cmd *exec.Cmd
	dir string
}

// StartOrigin starts the origin and waits (bounded) until its playlist lists minSegments.
// It stops with the test.
func StartOrigin(t testing.TB, minSegments int) *Origin {
	t.Helper()
	RequireTool(t, "ffmpeg")
	dir := t.TempDir()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50", "-keyint_min", "50",
		"-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "300k",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2", "-ar", "48000",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
		"-hls_flags", "delete_segments+independent_segments+temp_file",
		"-hls_segment_filename", filepath.Join(dir, "seg_%05d.ts"), filepath.Join(dir, "index.m3u8")}
	cmd := exec.Command("ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ffmpeg origin: %v", err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	o := &Origin{URL: srv.URL + "/index.m3u8", cmd: cmd, dir: dir}
	t.Cleanup(func() {
		srv.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(time.Duration(minSegments)*2*time.Second + 15*time.Second)
	for o.segments() < minSegments {
		if time.Now().After(deadline) {
			t.Fatalf("origin listed %d segments, want %d; ffmpeg: %s", o.segments(), minSegments, stderr.String())
		}
		time.Sleep(100 * time.Millisecond) // polling an external process's output file
	}
	return o
}

func (o *Origin) segments() int {
	b, _ := os.ReadFile(filepath.Join(o.dir, "index.m3u8"))
	return strings.Count(string(b), "#EXTINF")
}

// PlayResult is what an ffmpeg HLS client did.
type PlayResult struct {
	Err      error  // from the process (nil: exit 0)
	Stderr   string // everything ffmpeg printed
	Output   string // path of the remuxed MPEG-TS it wrote
	Problems []string
}

// playProblems are stderr lines that mean the client did not play cleanly.
var playProblems = regexp.MustCompile(`(?i)HTTP error|Failed to open segment|Failed to reload playlist|skipping \d+ segments|Server returned|Connection refused|Invalid data`)

// Play runs ffmpeg as an HLS client: it reads url live and remuxes seconds of media into a
// TS file (-c copy), like `ffmpeg -i URL -c copy -f mpegts FILE`. ctx can end it early.
func Play(ctx context.Context, t testing.TB, url string, seconds int) PlayResult {
	t.Helper()
	out := filepath.Join(t.TempDir(), "played.ts")
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-rw_timeout", "10000000", "-i", url, "-t", fmt.Sprint(seconds), "-c", "copy", "-f", "mpegts", "-y", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := PlayResult{Err: err, Stderr: stderr.String(), Output: out}
	for _, line := range strings.Split(r.Stderr, "\n") {
		if playProblems.MatchString(line) {
			r.Problems = append(r.Problems, line)
		}
	}
	return r
}

// Duration returns the media duration of a file as ffprobe reports it.
func Duration(t testing.TB, path string) time.Duration {
	t.Helper()
	RequireTool(t, "ffprobe")
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(out)) + "s")
	if err != nil {
		t.Fatalf("ffprobe %s duration %q: %v", path, out, err)
	}
	return d
}
