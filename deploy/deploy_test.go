package deploy

// Checks of the deployment files against the code. Offline and pure Go, except:
//   - the rawflow binary is built once (not in -short), with the Dockerfile's own `go build`
//     line, in a copy of the Docker build context (the repository less .dockerignore); its
//     --help gives the real flags, and the configurations of every file here are started
//     with it for real;
//   - systemd-analyze and nginx, when installed, check the units and the load balancer's
//     configuration (skipped otherwise).
// There is no Docker engine and no Kubernetes cluster here: images are not built, compose
// is not run, manifests are not applied (see README.md).
//
// This file: the shared helpers (flags, processes), the example configuration files and the
// probes. dockerfile_test.go, k8s_test.go, compose_test.go and systemd_test.go check the rest.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/gateway/demosource"
	"github.com/rawflow/rawflow/swarm"
)

// repoRoot is the repository, seen from this package's directory (where go test runs).
const repoRoot = ".."

var (
	tmpRoot string // removed by TestMain

	binOnce sync.Once
	binPath string
	binErr  error

	flagsMu    sync.Mutex
	flagsCache = map[string]map[string]flagInfo{}
)

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "rawflow-deploy-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(tmpRoot)
	os.Exit(code)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- flags and processes -----------------------------------------------------------------

type flagInfo struct {
	repeatable bool // the usage says "repeatable"
	isBool     bool
}

// commandFlags parses `rawflow SUB --help`.
func commandFlags(t *testing.T, sub string) map[string]flagInfo {
	t.Helper()
	bin := rawflowBinary(t)
	flagsMu.Lock()
	defer flagsMu.Unlock()
	if f, ok := flagsCache[sub]; ok {
		return f
	}
	out, err := exec.Command(bin, sub, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("rawflow %s --help: %v\n%s", sub, err, out)
	}
	flags := map[string]flagInfo{}
	head := regexp.MustCompile(`^  -([a-z0-9-]+)( \S+)?$`)
	var last string
	for _, l := range strings.Split(string(out), "\n") {
		if m := head.FindStringSubmatch(l); m != nil {
			last = m[1]
			flags[last] = flagInfo{isBool: m[2] == ""}
		} else if last != "" && strings.HasPrefix(l, "    \t") && strings.Contains(l, "repeatable") {
			fi := flags[last]
			fi.repeatable = true
			flags[last] = fi
		}
	}
	if len(flags) < 3 {
		t.Fatalf("rawflow %s --help: found only %d flags in\n%s", sub, len(flags), out)
	}
	flagsCache[sub] = flags
	return flags
}

// envFlag maps RAWFLOW_MAX_CHANNEL_BYTES to max-channel-bytes ("" when not RAWFLOW_…).
func envFlag(key string) string {
	name, ok := strings.CutPrefix(key, "RAWFLOW_")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// otherEnv are the variables besides RAWFLOW_<FLAG> a deployment may set.
var otherEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "TZ"}

// checkEnv reports variables that name no flag of `rawflow SUB`.
func checkEnv(t *testing.T, where, sub string, env map[string]string) {
	t.Helper()
	flags := commandFlags(t, sub)
	for k := range env {
		name := envFlag(k)
		switch {
		case name == "" && !slices.Contains(otherEnv, k):
			t.Errorf("%s: %s: neither RAWFLOW_<FLAG> nor one of %v", where, k, otherEnv)
		case name != "":
			if _, ok := flags[name]; !ok {
				t.Errorf("%s: %s: rawflow %s has no flag --%s", where, k, sub, name)
			}
		}
	}
}

// checkArgs reports --flags of args that `rawflow SUB` does not have, but for allow.
func checkArgs(t *testing.T, where, sub string, args []string, allow ...string) {
	t.Helper()
	flags := commandFlags(t, sub)
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if _, ok := flags[name]; !ok && !slices.Contains(allow, name) {
			t.Errorf("%s: rawflow %s has no flag --%s", where, sub, name)
		}
	}
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
}

// startRawflow runs the binary with args and exactly env (plus PATH): nothing of this test's
// own RAWFLOW_* environment leaks in.
func startRawflow(t *testing.T, args []string, env map[string]string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(rawflowBinary(t), args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitOK polls url until it answers 200, failing after timeout or when the process exits.
func (p *proc) waitOK(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("%v exited (%v) before %s answered 200:\n%s", p.cmd.Args, p.err, url, p.out)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				return
			case http.StatusNotFound, http.StatusMethodNotAllowed:
				t.Fatalf("%s: %s: no such route", url, resp.Status)
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s after %s; output of %v:\n%s", url, last, timeout, p.cmd.Args, p.out)
}

// stop sends SIGTERM and wants a clean exit within limit: what Kubernetes, Compose and
// systemd rely on.
func (p *proc) stop(t *testing.T, limit time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("%v after SIGTERM: %v\n%s", p.cmd.Args, p.err, p.out)
		}
	case <-time.After(limit):
		t.Errorf("%v still running %s after SIGTERM", p.cmd.Args, limit)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runGateway starts `rawflow gateway` with args and env, on a loopback port and without
// Redis (command-line flags win over the environment), waits until every path answers
// 200, then stops it with SIGTERM.
func runGateway(t *testing.T, args []string, env map[string]string, paths []string, stopLimit time.Duration) {
	t.Helper()
	port := freePort(t)
	args = append(slices.Clone(args), "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--redis", "")
	p := startRawflow(t, args, env)
	for _, pth := range paths {
		p.waitOK(t, fmt.Sprintf("http://127.0.0.1:%d%s", port, pth), 30*time.Second)
	}
	p.stop(t, stopLimit)
}

// runPeer starts `rawflow peer` with args and env on loopback ports, waits until its player
// port serves /metrics, then stops it with SIGTERM.
func runPeer(t *testing.T, args []string, env map[string]string) {
	t.Helper()
	port := freePort(t)
	args = append(slices.Clone(args), "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--peer-listen", "127.0.0.1:0")
	p := startRawflow(t, args, env)
	p.waitOK(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), 10*time.Second)
	p.stop(t, 10*time.Second)
}

// ---- example configuration files ---------------------------------------------------------

// configArgs turns a --config file (top-level keys: flag names; values: scalars, or lists
// for repeatable flags) into command-line arguments, checking it against the real flags.
func configArgs(t *testing.T, file, sub string) []string {
	t.Helper()
	var doc map[string]any
	if err := yaml.UnmarshalStrict(readFile(t, file), &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	flags := commandFlags(t, sub)
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		fi, ok := flags[k]
		if !ok {
			t.Errorf("%s: %q: rawflow %s has no flag --%s", file, k, sub, k)
			continue
		}
		values := []any{doc[k]}
		if list, isList := doc[k].([]any); isList {
			if !fi.repeatable {
				t.Errorf("%s: %s: a list, but --%s is not repeatable", file, k, k)
			}
			values = list
		}
		for _, v := range values {
			switch v := v.(type) {
			case string, bool:
				args = append(args, fmt.Sprintf("--%s=%v", k, v))
			case float64: // JSON numbers
				args = append(args, "--"+k+"="+strconv.FormatFloat(v, 'f', -1, 64))
			default:
				t.Errorf("%s: %s: %v (%T): want a scalar", file, k, v, v)
			}
		}
	}
	return args
}

// TestExampleConfigs checks rawflow-gateway.yaml and rawflow-peer.yaml against the real
// flags (configArgs), and starts each through --config (the command line's loopback
// addresses override the file's).
func TestExampleConfigs(t *testing.T) {
	for _, sub := range []string{"gateway", "peer"} {
		t.Run(sub, func(t *testing.T) {
			file := "rawflow-" + sub + ".yaml"
			configArgs(t, file, sub)
			abs, err := filepath.Abs(file)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{sub, "--config", abs}
			if sub == "gateway" {
				runGateway(t, args, nil, []string{"/healthz"}, 10*time.Second)
			} else {
				runPeer(t, args, nil)
			}
		})
	}
}

// ---- probes ------------------------------------------------------------------------------

// TestProbesServedByGateway: every HTTP probe path of the gateway Deployment answers 200
// from a real gateway (in process, on the built-in source), and an unknown path does not.
// The binary's own run of the Deployment's settings is in k8s_test.go.
func TestProbesServedByGateway(t *testing.T) {
	paths := gatewayProbePaths(t)
	if len(paths) == 0 {
		t.Fatal("the gateway Deployment has no HTTP probe")
	}
	src, err := demosource.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	origin := httptest.NewServer(src)
	defer origin.Close()
	cfg := gateway.Config{PeerAddrs: swarm.AddrLoopback,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{origin.URL + "/index.m3u8"}}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	srv, err := gateway.New(cfg, swarm.NewMemory(swarm.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	get := func(p string) int {
		resp, err := ts.Client().Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range paths {
		deadline := time.Now().Add(20 * time.Second)
		code := get(p)
		for code != http.StatusOK && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			code = get(p)
		}
		if code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, code)
		}
	}
	if code := get("/no-such-probe"); code == http.StatusOK {
		t.Error("GET /no-such-probe: 200: the check above proves nothing")
	}
}
