//go:build e2e

package web_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/web"
	"github.com/rawflow/rawflow/web/webtest"
)

// TestDashboardWithFakeAPI runs the dashboard in chromium, its API on made-up stats (the
// real handlers on fakeStats, events every 500 ms), and the preview page on a live HLS stream from ffmpeg served from another origin (as a proxy's).
func TestDashboardWithFakeAPI(t *testing.T) {
	webtest.Check(t)
	preview := web.HasHLSJS()
	if !preview && (os.Getenv("CI") != "" || os.Getenv("RAWFLOW_REQUIRE_TOOLS") != "") {
		t.Fatal("hls.js not vendored into web/static/vendor: run make web")
	}

	var hlsDir string
	var live *httptest.Server
	if preview {
		hlsDir = startFFmpeg(t)
		live = serveLiveHLS(t, hlsDir)
	}
	dash, err := web.New(fakeStats{}, web.Config{PricePerGB: 0.02, EventsInterval: 500 * time.Millisecond})
	require.NoError(t, err)
	gw := httptest.NewUnstartedServer(dash.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	gw.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	gw.Start()
	t.Cleanup(gw.Close)
	t.Cleanup(cancel) // runs first: ends the event streams

	env := map[string]string{
		"DASHBOARD_URL": gw.URL,
		"CHANNEL":       "tv",
		"SCREENSHOT":    screenshotPath(t, "dashboard-fake.png"),
	}
	if preview {
		waitForSegments(t, filepath.Join(hlsDir, "index.m3u8"), 2)
		env["PREVIEW_URL"] = gw.URL + "/preview/tv?src=" + url.QueryEscape(live.URL+"/live/tv/index.m3u8")
		env["PREVIEW_SCREENSHOT"] = screenshotPath(t, "preview-fake.png")
	}
	res := webtest.RunBrowser(t, env)

	assert.Equal(t, "tv", res.Channel)
	assert.Contains(t, res.FiguresCompared, "total.viewers_assisted")
	assert.Contains(t, res.FiguresCompared, "tv.stalls")
	assert.NotContains(t, res.FiguresCompared, "tv.gateway_mbps", "moves every second: never still over 1 s")
	assert.GreaterOrEqual(t, res.Generations, 2)
	for _, chart := range []string{"offload", "traffic", "viewers", "qoe"} {
		assert.Greater(t, res.Points[chart], 0, chart)
	}
	require.NotNil(t, res.Tables)
	assert.Equal(t, 3, res.Tables.Groups)
	assert.Equal(t, 5, res.Tables.Feeds)
	assert.Equal(t, 4, res.Tables.Paths)
	assert.Equal(t, 2, res.Tables.Renditions)
	assert.Less(t, res.PageWeightBytes, int64(200_000), "the dashboard's load, API answers included")
	if preview {
		require.NotNil(t, res.Preview)
		assert.Equal(t, "hls.js", res.Preview.Engine)
		assert.GreaterOrEqual(t, res.Preview.Advanced, 2.0)
	} else {
		t.Log("preview page NOT checked: hls.js not vendored (make web)")
	}
	png, err := os.ReadFile(env["SCREENSHOT"])
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(png), "\x89PNG"), "screenshot is a PNG")
}

// screenshotPath is name under $RAWFLOW_ARTIFACTS when set, else in the test's temp dir.
func screenshotPath(t *testing.T, name string) string {
	dir := os.Getenv("RAWFLOW_ARTIFACTS")
	if dir == "" {
		return filepath.Join(t.TempDir(), name)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return filepath.Join(dir, name)
}

// startFFmpeg writes a live HLS stream (2 s segments, a sliding window of 6) into a temp dir.
func startFFmpeg(t *testing.T) string {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		webtest.Missing(t, "ffmpeg not found (make deps installs it)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-c:a", "aac",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-hls_flags", "delete_segments",
		filepath.Join(dir, "index.m3u8"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("ffmpeg: %s", stderr.String())
		}
	})
	return dir
}

// serveLiveHLS serves the HLS files of dir as /live/tv/…, with CORS, as a proxy does.
func serveLiveHLS(t *testing.T, dir string) *httptest.Server {
	files := http.StripPrefix("/live/tv/", http.FileServer(http.Dir(dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// waitForSegments waits until the playlist lists n segments.
func waitForSegments(t *testing.T, playlist string, n int) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, _ := os.ReadFile(playlist)
		if strings.Count(string(body), "#EXTINF") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ffmpeg wrote no %d segments in 20 s: %q", n, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
