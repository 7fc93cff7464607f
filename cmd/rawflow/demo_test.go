//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/web/webtest"
)

// startDemo runs `rawflow demo args…` in this process until the test ends and returns what it
// printed up to "Ctrl-C stops." or "Stopping after …", and the channel its end arrives on.
func startDemo(t *testing.T, args ...string) (printed []string, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := &lineWriter{lines: make(chan string, 100)}
	ch := make(chan error, 1)
	go func() { ch <- run(ctx, append([]string{"demo"}, args...), out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ch:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop within 30 s")
		}
	})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-out.lines:
			printed = append(printed, line)
			if strings.HasPrefix(line, "Ctrl-C stops.") || strings.HasPrefix(line, "Stopping after") {
				return printed, ch
			}
		case err := <-ch:
			t.Fatalf("demo ended early: %v\nprinted:\n%s", err, strings.Join(printed, "\n"))
		case <-deadline:
			t.Fatalf("demo printed no end of its URLs within 10 s:\n%s", strings.Join(printed, "\n"))
		}
	}
}

// printedURL returns the first http URL on the line of printed whose first word is key.
func printedURL(t *testing.T, printed []string, key ...string) string {
	t.Helper()
	for _, line := range printed {
		f := strings.Fields(line)
		if len(f) > len(key) && strings.Join(f[:len(key)], " ") == strings.Join(key, " ") {
			for _, w := range f[len(key):] {
				if strings.HasPrefix(w, "http://") {
					return w
				}
			}
		}
	}
	t.Fatalf("no %q URL in:\n%s", strings.Join(key, " "), strings.Join(printed, "\n"))
	return ""
}

// TestDemoURLs: a demo listening on every address prints 127.0.0.1 with its real port, the
// dashboard and a "play this" line (proxy 1) first; the proxies take consecutive ports from
// --proxy-port, and one whose port is taken falls back to a free one and says so.
func TestDemoURLs(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		t.Run(listen, func(t *testing.T) {
			t.Parallel()
			if listen == "[::]:0" {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					t.Skipf("no IPv6 here: %v", err)
				}
				ln.Close()
			}
			held, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer held.Close()
			taken := held.Addr().(*net.TCPAddr).Port
			printed, _ := startDemo(t, "--listen", listen, "--viewers", "0", "--peers", "2", "--proxy-port", strconv.Itoa(taken))
			t.Logf("printed:\n%s", strings.Join(printed, "\n"))

			var first []string // the first two lines with a URL
			for _, line := range printed {
				if strings.Contains(line, "http://") && len(first) < 2 {
					first = append(first, strings.Fields(line)[0]+" "+strings.Fields(line)[1])
				}
			}
			require.Len(t, first, 2)
			assert.Equal(t, "play this", first[1])
			dash := printedURL(t, printed, "dashboard")
			assert.Regexp(t, regexp.MustCompile(`^http://127\.0\.0\.1:[1-9][0-9]*/$`), dash)
			assert.True(t, strings.HasPrefix(first[0], "dashboard http://127.0.0.1:"), first[0])
			resp, err := http.Get(dash)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "the printed dashboard URL answers")

			proxy1 := printedURL(t, printed, "proxy", "1")
			proxy2 := printedURL(t, printed, "proxy", "2")
			assert.Equal(t, proxy1, printedURL(t, printed, "play", "this", "ffplay"), "play this: proxy 1")
			assert.NotContains(t, proxy1, ":"+strconv.Itoa(taken)+"/", "proxy 1's port was taken")
			assert.Contains(t, strings.Join(printed, "\n"), fmt.Sprintf("proxy 1: port %d is taken", taken))
			if !strings.Contains(strings.Join(printed, "\n"), fmt.Sprintf("proxy 2: port %d is taken", taken+1)) {
				assert.True(t, strings.HasPrefix(proxy2, fmt.Sprintf("http://127.0.0.1:%d/", taken+1)), "proxy 2 on the next port: %s", proxy2)
			}
			for _, u := range []string{proxy1, proxy2} {
				resp, err := http.Get(strings.Replace(u, "/live/demo/index.m3u8", "/api/v1/status", 1))
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode, u)
			}
		})
	}
}

// TestDemoViewers: --viewers 0 starts no simulated viewer (the gateway sees none for 8 s);
// --viewers 3 shows 3 assisted viewers in the dashboard's overview within 20 s.
func TestDemoViewers(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			printed, _ := startDemo(t, "--listen", "127.0.0.1:0", "--proxy-port", "0", "--viewers", strconv.Itoa(n))
			dash := printedURL(t, printed, "dashboard")
			if n == 0 {
				assert.Contains(t, printed[0], "no simulated viewers")
			} else {
				assert.Contains(t, printed[0], fmt.Sprintf("%d simulated viewers", n))
			}
			start := time.Now()
			most := 0.0
			for time.Since(start) < map[bool]time.Duration{true: 8 * time.Second, false: 20 * time.Second}[n == 0] {
				assisted := overviewFigure(t, dash, "viewers_assisted")
				most = max(most, assisted)
				if n > 0 && assisted >= float64(n) {
					t.Logf("%d assisted viewers after %s", n, time.Since(start).Round(time.Millisecond))
					return
				}
				time.Sleep(500 * time.Millisecond) // polling a figure that moves by itself
			}
			if n > 0 {
				t.Fatalf("at most %.0f assisted viewers in 20 s, want %d", most, n)
			}
			assert.Zero(t, most, "assisted viewers with --viewers 0")
		})
	}
}

// overviewFigure reads one figure of all channels from the dashboard's overview API.
func overviewFigure(t *testing.T, base, key string) float64 {
	t.Helper()
	resp, err := http.Get(base + "api/v1/overview")
	require.NoError(t, err)
	defer resp.Body.Close()
	var ov struct {
		Total map[string]any `json:"total"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ov))
	v, _ := ov.Total[key].(float64)
	return v
}

// TestDemoDashboardInBrowser: `rawflow demo` with its defaults (on free ports); within 30 s
// of its start, the dashboard, as Chromium renders it, shows an offload above 50 % and at
// least 10 assisted viewers; then the rest of the dashboard's browser checks pass on it. The
// screenshot of that moment is saved as an artifact (demo-dashboard.png).
func TestDemoDashboardInBrowser(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	webtest.Check(t)
	started := time.Now()
	printed, _ := startDemo(t, "--listen", "127.0.0.1:0", "--proxy-port", "0")
	dash := printedURL(t, printed, "dashboard")
	shot := filepath.Join(artifactsDir(t), "demo-dashboard.png")
	res := webtest.RunBrowser(t, map[string]string{
		"DASHBOARD_URL": dash, "WANT_OFFLOAD": "0.5", "WANT_ASSISTED": "10", "WANT_SCREENSHOT": shot,
		"WANT_WITHIN_MS": strconv.FormatInt((30*time.Second - time.Since(started)).Milliseconds(), 10),
	})
	require.NotNil(t, res.Wanted, "the script checked the figures")
	t.Logf("after %d ms (script's clock) the page showed offload %s, %s assisted viewers; screenshot %s",
		res.Wanted.AfterMS, res.Wanted.Offload, res.Wanted.ViewersAssisted, shot)
	fi, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Positive(t, fi.Size())
}

// TestOpenBrowser: --open runs the system's opener with the dashboard URL where there is one,
// and says so, never failing, where there is none.
func TestOpenBrowser(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("the fake opener is xdg-open")
	}
	dir := t.TempDir()
	got := filepath.Join(dir, "opened")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "xdg-open"), []byte("#!/bin/sh\nprintf '%s\\n' \"$*\" > "+got+"\n"), 0o755))
	t.Setenv("PATH", dir)
	var out strings.Builder
	openBrowser(t.Context(), "http://127.0.0.1:8080/", &out)
	assert.Contains(t, out.String(), "Opening the dashboard in your browser (xdg-open)")
	deadline := time.Now().Add(10 * time.Second)
	var b []byte
	for time.Now().Before(deadline) {
		if b, _ = os.ReadFile(got); strings.HasSuffix(string(b), "\n") {
			break
		}
		time.Sleep(50 * time.Millisecond) // the opener runs in the background; nothing to wait on
	}
	assert.Equal(t, "http://127.0.0.1:8080/\n", string(b))

	t.Setenv("PATH", t.TempDir())
	out.Reset()
	openBrowser(t.Context(), "http://127.0.0.1:8080/", &out)
	assert.Equal(t, "--open: no xdg-open found to open a browser; open http://127.0.0.1:8080/ yourself.\n", out.String())
}
