package hlstest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// Live MPEG-TS test sources: ffmpeg input and codec arguments for a real-time encode
// (each input read at its native rate), H.264/AAC with a keyframe every 2 s unless the name
// says otherwise.
var (
	TSH264 = []string{"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-re", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50", "-c:a", "aac"}
	TSH265 = []string{"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-re", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=50:min-keyint=50:scenecut=0:log-level=error", "-c:a", "aac"}
	TSAAC = []string{"-re", "-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "aac"}
)

// Encoder is a live ffmpeg encode of a recipe to an output URL.
type Encoder struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
}

// StartEncoder starts ffmpeg encoding recipe as MPEG-TS to out (a URL ffmpeg writes to:
// udp://…, srt://…, or pipe:1 with stdout set by the caller through configure). It is
// killed at the end of the test.
func StartEncoder(t testing.TB, recipe []string, out string) *Encoder {
	t.Helper()
	RequireTool(t, "ffmpeg")
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, recipe...)
	e := &Encoder{done: make(chan struct{})}
	e.cmd = exec.Command("ffmpeg", append(args, "-f", "mpegts", out)...)
	e.cmd.Stderr = &e.stderr
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	go func() { _ = e.cmd.Wait(); close(e.done) }()
	t.Cleanup(e.Stop)
	return e
}

// Stop kills the encoder and waits for it. Safe to call more than once.
func (e *Encoder) Stop() {
	_ = e.cmd.Process.Kill()
	<-e.done
}

// Done is closed when the encoder has exited.
func (e *Encoder) Done() <-chan struct{} { return e.done }

// TSFanout is a media server's HTTP output: one live ffmpeg encode, served as a continuous
// MPEG-TS response (chunked) to every client, each from where the stream is when it
// connects.
type TSFanout struct {
	// URL is the stream's URL.
	URL    string
	recipe []string
	srv    *httptest.Server

	mu   sync.Mutex // guards the following fields
	subs map[chan []byte]struct{}
	enc  *exec.Cmd // nil while stopped
}

// StartTSFanout starts the encode and its HTTP server on 127.0.0.1.
func StartTSFanout(t testing.TB, recipe []string) *TSFanout {
	t.Helper()
	RequireTool(t, "ffmpeg")
	f := &TSFanout{recipe: recipe, subs: map[chan []byte]struct{}{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL + "/stream.ts"
	f.Restart(t)
	t.Cleanup(func() { f.Stop(); f.srv.Close() })
	return f
}

// Restart kills the encode (every client's response ends) and starts a new one, whose
// timestamps start again from the beginning, as a restarted encoder's do.
func (f *TSFanout) Restart(t testing.TB) {
	t.Helper()
	f.Stop()
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, f.recipe...)
	cmd := exec.Command("ffmpeg", append(args, "-f", "mpegts", "pipe:1")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("ffmpeg stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	f.mu.Lock()
	f.enc = cmd
	f.mu.Unlock()
	go f.broadcast(out)
}

// Stop kills the encode: clients' responses end, new clients get 503 until Restart.
func (f *TSFanout) Stop() {
	f.mu.Lock()
	cmd := f.enc
	f.enc = nil
	f.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// broadcast copies the encoder's output to every client, dropping a client that falls
// 256 chunks behind; when the encoder ends, every response ends.
func (f *TSFanout) broadcast(out io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := out.Read(buf)
		f.mu.Lock()
		for sub := range f.subs {
			if err != nil {
				close(sub)
				delete(f.subs, sub)
				continue
			}
			select {
			case sub <- bytes.Clone(buf[:n]):
			default:
				close(sub)
				delete(f.subs, sub)
			}
		}
		f.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (f *TSFanout) serve(w http.ResponseWriter, r *http.Request) {
	sub := make(chan []byte, 256)
	f.mu.Lock()
	running := f.enc != nil
	if running {
		f.subs[sub] = struct{}{}
	}
	f.mu.Unlock()
	if !running {
		http.Error(w, "encoder stopped", http.StatusServiceUnavailable)
		return
	}
	defer func() {
		f.mu.Lock()
		delete(f.subs, sub)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "video/mp2t")
	flusher, _ := w.(http.Flusher)
	for {
		select {
		case chunk, ok := <-sub:
			if !ok {
				return
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

// Clients returns how many clients are connected.
func (f *TSFanout) Clients() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// EncodeTS returns seconds of a recipe as MPEG-TS, encoded as fast as ffmpeg can (the
// recipe's -re flags dropped).
func EncodeTS(t testing.TB, recipe []string, seconds int) []byte {
	t.Helper()
	RequireTool(t, "ffmpeg")
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	for _, a := range recipe {
		if a != "-re" {
			args = append(args, a)
		}
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", append(args, "-t", strconv.Itoa(seconds), "-f", "mpegts", "pipe:1")...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.String())
	}
	return out.Bytes()
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("free UDP port: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
