package hlstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
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
	URL   string
	cmd   *exec.Cmd // guarded by mu
	dir   string
	watch string // the playlist whose segments tell the origin is ready
	srv   *httptest.Server
	args  []string // ffmpeg's, to restart it

	mu      sync.Mutex // guards stopped and cmd across Stop and Restart
	stopped bool
}

// Stop stops the origin: its HTTP server refuses connections from then on. Safe to call
// more than once.
func (o *Origin) Stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		return
	}
	o.stopped = true
	o.srv.Close()
	_ = o.cmd.Process.Kill()
	_ = o.cmd.Wait()
}

// Restart kills the encoder and starts a new one on the same URL, as a broadcaster
// restarting its encoder would: numbering and timestamps start over.
func (o *Origin) Restart(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = o.cmd.Process.Kill()
	_ = o.cmd.Wait()
	o.cmd = exec.Command("ffmpeg", o.args...)
	if err := o.cmd.Start(); err != nil {
		t.Fatalf("restart ffmpeg origin: %v", err)
	}
}

// Kind is the kind of live HLS an origin makes.
type Kind string

// Origin kinds.
const (
	TS        Kind = "ts"        // MPEG-TS segments
	FMP4      Kind = "fmp4"      // fMP4 segments after an EXT-X-MAP init section, with PDT
	AES       Kind = "aes"       // MPEG-TS segments encrypted with AES-128 (a key file served beside them)
	ByteRange Kind = "byterange" // one growing MPEG-TS file, segments as EXT-X-BYTERANGE
	VOD       Kind = "vod"       // 8 s of MPEG-TS encoded at once, EXT-X-PLAYLIST-TYPE:VOD, EXT-X-ENDLIST
)

// StartOrigin starts a live MPEG-TS origin and waits (bounded) until its playlist lists
// minSegments. It stops with the test.
func StartOrigin(t testing.TB, minSegments int) *Origin { return StartKind(t, TS, minSegments) }

// StartKind starts a live origin of the given kind, as StartOrigin does.
func StartKind(t testing.TB, kind Kind, minSegments int) *Origin {
	t.Helper()
	dir := t.TempDir()
	out := []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50", "-keyint_min", "50",
		"-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "300k",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2", "-ar", "48000",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "6"}
	seg := filepath.Join(dir, "seg_%05d.ts")
	switch kind {
	case TS:
		out = append(out, "-hls_flags", "delete_segments+independent_segments+temp_file")
	case FMP4:
		out = append(out, "-hls_flags", "delete_segments+independent_segments+temp_file+program_date_time",
			"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")
		seg = filepath.Join(dir, "seg_%05d.m4s")
	case AES:
		key := make([]byte, 16)
		_, _ = rand.Read(key)
		info := "k.key\n" + filepath.Join(dir, "k.key") + "\n"
		if os.WriteFile(filepath.Join(dir, "k.key"), key, 0o600) != nil || os.WriteFile(filepath.Join(dir, "keyinfo"), []byte(info), 0o600) != nil {
			t.Fatal("cannot write the AES key files")
		}
		out = append(out, "-hls_flags", "delete_segments+temp_file", "-hls_key_info_file", filepath.Join(dir, "keyinfo"))
	case ByteRange:
		out = append(out, "-hls_flags", "single_file")
		seg = filepath.Join(dir, "all.ts")
	case VOD:
		out = append([]string{"-t", "8"}, out...)
		out = append(out, "-hls_playlist_type", "vod", "-hls_list_size", "0")
	default:
		t.Fatalf("unknown origin kind %q", kind)
	}
	out = append(out, "-hls_segment_filename", seg, filepath.Join(dir, "index.m3u8"))
	return startOrigin(t, dir, "index.m3u8", "index.m3u8", minSegments, out)
}

// StartABROrigin starts an origin with a multivariant playlist (master.m3u8): two H.264
// variants (320x180 and 160x90) that share a separate AAC audio rendition group
// (audio/index.m3u8), all in 2 s MPEG-TS segments. It waits until the audio playlist lists
// minSegments.
func StartABROrigin(t testing.TB, minSegments int) *Origin {
	t.Helper()
	dir := t.TempDir()
	out := []string{"-filter_complex", "[0:v]split=2[a][b];[b]scale=160:90[b2]", "-map", "[a]", "-map", "[b2]", "-map", "1:a",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50", "-keyint_min", "50",
		"-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v:0", "300k", "-b:v:1", "100k",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2", "-ar", "48000",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
		"-hls_flags", "delete_segments+independent_segments+temp_file", "-master_pl_name", "master.m3u8",
		"-var_stream_map", "v:0,agroup:aud,name:hi v:1,agroup:aud,name:lo a:0,agroup:aud,name:audio",
		"-hls_segment_filename", filepath.Join(dir, "%v", "seg_%05d.ts"), filepath.Join(dir, "%v", "index.m3u8")}
	return startOrigin(t, dir, "master.m3u8", filepath.Join("audio", "index.m3u8"), minSegments, out)
}

// startOrigin runs ffmpeg on testsrc2 + sine with the output arguments out, serves dir, and
// waits until the playlist watch lists minSegments.
func startOrigin(t testing.TB, dir, entry, watch string, minSegments int, out []string) *Origin {
	t.Helper()
	RequireTool(t, "ffmpeg")
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	live := !slices.Contains(out, "vod") // VOD is encoded as fast as it goes
	for _, src := range []string{"testsrc2=size=320x180:rate=25", "sine=frequency=440:sample_rate=48000"} {
		if live {
			args = append(args, "-re") // per input: see research/tooling.md
		}
		args = append(args, "-f", "lavfi", "-i", src)
	}
	args = append(args, out...)
	cmd := exec.Command("ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ffmpeg origin: %v", err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	o := &Origin{URL: srv.URL + "/" + entry, cmd: cmd, dir: dir, watch: filepath.Join(dir, watch), srv: srv, args: args}
	t.Cleanup(o.Stop)
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
	b, _ := os.ReadFile(o.watch)
	return strings.Count(string(b), "#EXTINF")
}

// FileDigests returns the SHA-256 of every file the origin serves now, playlists and key
// files excepted: what the gateway's segments and init sections must be identical to.
func (o *Origin) FileDigests(t testing.TB) map[[32]byte]string {
	t.Helper()
	out := map[[32]byte]string{}
	err := filepath.WalkDir(o.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".m3u8") || strings.HasSuffix(p, ".key") || strings.HasSuffix(p, "keyinfo") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			out[sha256.Sum256(b)] = p
		}
		return nil // a file ffmpeg deleted meanwhile is simply not there
	})
	if err != nil {
		t.Fatalf("read origin files: %v", err)
	}
	return out
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
