package webtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// timeout bounds one run of the script, which bounds its own waits to under a minute.
const timeout = 90 * time.Second

// Result is the JSON line the script prints: what it checked and found.
type Result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Browser is the chromium version.
	Browser string `json:"browser"`
	// Channel is the channel the script selected ("" when the overview had none).
	Channel string `json:"channel"`
	// FiguresCompared lists the figures found equal on the page and in the API, as
	// "total.offload", "tv.stalls", ….
	FiguresCompared []string `json:"figures_compared"`
	// Generations is the live overview events the page had received (#updated).
	Generations int `json:"generations"`
	// Points is data-points per chart for the selected channel.
	Points map[string]int `json:"points"`
	// PageWeightBytes sums the response bodies of the dashboard's load (page, assets, API),
	// until its figures and charts are up; PageRequests has them one by one.
	PageWeightBytes int64            `json:"page_weight_bytes"`
	PageRequests    map[string]int64 `json:"page_requests"`
	// Tables counts the breakdown tables' rows, CSV describes the export link's answer.
	Tables *struct{ Groups, Feeds, Paths, Renditions int } `json:"tables"`
	CSV    *struct {
		Status      int    `json:"status"`
		ContentType string `json:"content_type"`
		Rows        int    `json:"rows"`
	} `json:"csv"`
	// Preview is nil when no PREVIEW_URL was given.
	Preview *struct {
		Engine      string  `json:"engine"`
		StartTime   float64 `json:"start_time"`
		CurrentTime float64 `json:"current_time"`
		Advanced    float64 `json:"advanced"`
		NonFatal    int     `json:"non_fatal"`
	} `json:"preview"`
	// Wanted is what the page showed once it met WANT_OFFLOAD and WANT_ASSISTED (nil when
	// they were not set): the tiles' text, and the script's time then.
	Wanted *struct {
		Offload         string `json:"offload"`
		ViewersAssisted string `json:"viewers_assisted"`
		AfterMS         int64  `json:"after_ms"`
	} `json:"wanted"`
	ElapsedMS int64 `json:"elapsed_ms"`
	// Raw is the whole line, for logs and artifacts.
	Raw json.RawMessage `json:"-"`
}

// RunBrowser runs web/e2e/dashboard.mjs with env added to the process environment
// (DASHBOARD_URL, PREVIEW_URL, SCREENSHOT, MIN_GENERATIONS, CHANNEL, WANT_OFFLOAD, …; see the
// script) and
// returns its report. A failed check fails t. When node, chromium or node_modules (make deps)
// are missing it skips t, unless CI or RAWFLOW_REQUIRE_TOOLS is set: then it fails t.
func RunBrowser(t testing.TB, env map[string]string) Result {
	t.Helper()
	root, node, err := tools(env)
	if err != nil {
		Missing(t, "browser test: %v (make deps installs them)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("web", "e2e", "dashboard.mjs"))
	cmd.Dir = root
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	res, parseErr := parse(stdout.Bytes())
	switch {
	case parseErr != nil:
		t.Fatalf("browser test: %v (run: %v)\nstdout: %s\nstderr: %s", parseErr, runErr, stdout.Bytes(), stderr.Bytes())
	case runErr != nil || !res.OK:
		t.Fatalf("browser test failed: %s (run: %v)\nreport: %s\nstderr: %s", res.Error, runErr, res.Raw, stderr.Bytes())
	}
	t.Logf("browser test: %s", res.Raw)
	return res
}

// Check skips or fails t, as RunBrowser would, when the browser test cannot run here: call
// it before starting what the test needs.
func Check(t testing.TB) {
	t.Helper()
	if _, _, err := tools(nil); err != nil {
		Missing(t, "browser test: %v (make deps installs them)", err)
	}
}

// Missing reports a tool the test needs and does not find: it skips t on a developer's
// machine, and fails t when CI or RAWFLOW_REQUIRE_TOOLS is set.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" || os.Getenv("RAWFLOW_REQUIRE_TOOLS") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// tools finds the repository root (where node_modules is) and node, and checks chromium and
// playwright-core are there.
func tools(env map[string]string) (root, node string, err error) {
	if node, err = exec.LookPath("node"); err != nil {
		return "", "", errors.New("node not found")
	}
	browser := env["CHROMIUM"]
	if browser == "" {
		browser = os.Getenv("CHROMIUM")
	}
	if browser == "" {
		browser = "/usr/bin/chromium"
	}
	if _, err = os.Stat(browser); err != nil {
		return "", "", errors.New("chromium not found at " + browser)
	}
	if root, err = repoRoot(); err != nil {
		return "", "", err
	}
	if _, err = os.Stat(filepath.Join(root, "node_modules", "playwright-core", "package.json")); err != nil {
		return "", "", errors.New("node_modules/playwright-core not installed")
	}
	return root, node, nil
}

// repoRoot walks up from the working directory (a test's package directory) to go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, "web", "e2e", "dashboard.mjs")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod, web/e2e) not found")
		}
		dir = parent
	}
}

func isFile(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.Mode().IsRegular()
}

// parse reads the last JSON line of the script's output.
func parse(out []byte) (Result, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return Result{}, err
		}
		res.Raw = json.RawMessage(line)
		return res, nil
	}
	return Result{}, errors.New("no JSON report on stdout")
}
