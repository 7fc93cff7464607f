package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A benchmark tool, not part of the rawflow binary: this file (about 410 lines) holds the
// command line, the scenario table and the report, read together.

// config is the command line.
type config struct {
	channels        []int
	segmentSize     int
	segmentInterval time.Duration
	baselineSize    int
	window          int
	samples         int
	sampleEvery     time.Duration
	slowPlayers     int
	slowHold        time.Duration
	slowRate        int
	slowRcvbuf      int
	cacheSizes      []string
	proxyInterval   time.Duration
	trackerClients  int
	trackerDuration time.Duration
	jsonPath        string
	logDir          string
	timeout         time.Duration
	phases          []string
	gctrace         bool
	gogc            string
	bin             string
}

var allPhases = []string{"gateway", "slow", "proxy", "tracker"}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: go run ./bench/memory [flags]\n\nGateway RSS per channel and with slow players, proxy RSS per cache size, tracker throughput with Redis.\n\nFlags:")
		fs.PrintDefaults()
	}
	channels := fs.String("channels", "1,4,16", "channel counts K to measure the gateway with")
	fs.IntVar(&c.segmentSize, "segment-size", 1_000_000, "bytes of each origin segment")
	fs.DurationVar(&c.segmentInterval, "segment-interval", time.Second, "a new origin segment every this long (phases 1, 2, 4)")
	fs.IntVar(&c.baselineSize, "baseline-segment-size", 1000, "bytes of each segment of the baseline gateway's one channel")
	fs.IntVar(&c.window, "window", 6, "the gateway's --window")
	fs.IntVar(&c.samples, "samples", 6, "RSS readings per measurement")
	fs.DurationVar(&c.sampleEvery, "sample-every", time.Second, "pause between RSS readings")
	fs.IntVar(&c.slowPlayers, "slow-players", 1000, "concurrent slow players (TCP connections)")
	fs.DurationVar(&c.slowHold, "slow-hold", 10*time.Second, "how long the slow players are held")
	fs.IntVar(&c.slowRate, "slow-rate", 10240, "bytes per second each slow player reads (in 10 reads)")
	fs.IntVar(&c.slowRcvbuf, "slow-rcvbuf", 4096, "SO_RCVBUF of each slow player's socket (the kernel doubles it)")
	cacheSizes := fs.String("cache-sizes", "16MiB,32MiB,64MiB", "proxy --cache-size values to measure (the proxy refuses less than its 32 MiB largest segment)")
	fs.DurationVar(&c.proxyInterval, "proxy-segment-interval", 250*time.Millisecond, "origin segment interval of the proxy phase (shorter fills the cache sooner)")
	fs.IntVar(&c.trackerClients, "tracker-clients", 32, "concurrent tracker clients")
	fs.DurationVar(&c.trackerDuration, "tracker-duration", 10*time.Second, "duration of each tracker measurement")
	fs.StringVar(&c.jsonPath, "json", "", "write every number to this JSON file (its directory also gets the children's logs)")
	fs.StringVar(&c.logDir, "log-dir", "", "directory for the children's logs; default: that of --json, else a temporary one")
	fs.DurationVar(&c.timeout, "timeout", 20*time.Minute, "bound on the whole run")
	phases := fs.String("phases", strings.Join(allPhases, ","), "phases to run: gateway, slow, proxy, tracker")
	fs.BoolVar(&c.gctrace, "gctrace", true, "run the gateways and proxies with GODEBUG=gctrace=1 and report their heap from it")
	fs.StringVar(&c.gogc, "gogc", "", "GOGC for the gateways and proxies (empty: theirs, 100)")
	fs.StringVar(&c.bin, "bin", "", "a rawflow binary to use instead of building one")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for f := range strings.SplitSeq(*channels, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 || k > 256 {
			return c, fmt.Errorf("--channels: %q: want 1-256", f)
		}
		c.channels = append(c.channels, k)
	}
	for f := range strings.SplitSeq(*cacheSizes, ",") {
		if _, err := parseSize(strings.TrimSpace(f)); err != nil {
			return c, fmt.Errorf("--cache-sizes: %w", err)
		}
		c.cacheSizes = append(c.cacheSizes, strings.TrimSpace(f))
	}
	for f := range strings.SplitSeq(*phases, ",") {
		if f = strings.TrimSpace(f); !slices.Contains(allPhases, f) {
			return c, fmt.Errorf("--phases: unknown phase %q (want %s)", f, strings.Join(allPhases, ", "))
		}
		c.phases = append(c.phases, f)
	}
	switch {
	case c.segmentSize < 1 || c.segmentSize > 32<<20:
		return c, errors.New("--segment-size: want 1 B to 32 MiB")
	case c.segmentInterval < 100*time.Millisecond || c.proxyInterval < 100*time.Millisecond:
		return c, errors.New("segment intervals: want at least 100ms")
	case c.samples < 1 || c.samples > 100:
		return c, errors.New("--samples: want 1-100")
	case c.slowPlayers < 1 || c.slowPlayers > 20000:
		return c, errors.New("--slow-players: want 1-20000")
	case c.slowRate < 10:
		return c, errors.New("--slow-rate: want at least 10 bytes/s")
	case c.slowHold <= 0 || c.slowHold > 10*time.Minute || c.trackerDuration <= 0 || c.trackerDuration > 10*time.Minute:
		return c, errors.New("--slow-hold and --tracker-duration: want up to 10m")
	case c.trackerClients < 1 || c.trackerClients > 1024:
		return c, errors.New("--tracker-clients: want 1-1024")
	case c.window < 3:
		return c, errors.New("--window: want at least 3")
	}
	return c, nil
}

// parseSize parses 16MiB, 64MB, 1000 and the like into bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult, num := int64(1), s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want e.g. 16MiB", s)
	}
	return n * mult, nil
}

// Report is everything the run measured (--json).
type Report struct {
	Date      string   `json:"date"`
	Command   []string `json:"command"`
	NProc     int      `json:"nproc"`
	GoVersion string   `json:"go_version"`
	Kernel    string   `json:"kernel"`
	Binary    string   `json:"binary"`
	// Git is the commit the binary was built on and the files modified in the working
	// tree then (the build includes them).
	Git struct {
		Commit   string   `json:"commit"`
		Modified []string `json:"modified,omitempty"`
	} `json:"git"`
	LogDir   string   `json:"log_dir"`
	Settings settings `json:"settings"`
	NoFile   struct {
		Bench   string `json:"bench"`
		Gateway string `json:"gateway"`
		Note    string `json:"note"`
	} `json:"nofile_limits"`
	Baseline    *gatewayRun  `json:"gateway_baseline,omitempty"`
	Gateway     []gatewayRun `json:"gateway,omitempty"`
	Slow        *slowRun     `json:"slow_players,omitempty"`
	Proxy       []proxyRun   `json:"proxy,omitempty"`
	Tracker     *trackerRun  `json:"tracker,omitempty"`
	Errors      []string     `json:"errors,omitempty"`
	WallSeconds float64      `json:"wall_seconds"`
}

type settings struct {
	Channels           []int    `json:"channels"`
	SegmentBytes       int      `json:"segment_bytes"`
	SegmentInterval    string   `json:"segment_interval"`
	BaselineBytes      int      `json:"baseline_segment_bytes"`
	Window             int      `json:"window"`
	SlowPlayers        int      `json:"slow_players"`
	SlowHold           string   `json:"slow_hold"`
	SlowRate           int      `json:"slow_rate_bytes_per_s"`
	SlowRcvbuf         int      `json:"slow_rcvbuf"`
	CacheSizes         []string `json:"cache_sizes"`
	ProxyInterval      string   `json:"proxy_segment_interval"`
	TrackerClients     int      `json:"tracker_clients"`
	TrackerDuration    string   `json:"tracker_duration"`
	ChildGODEBUG       string   `json:"child_godebug,omitempty"`
	ChildGOGC          string   `json:"child_gogc,omitempty"`
	RSSSamples         int      `json:"rss_samples"`
	RSSSampleEverySecs float64  `json:"rss_sample_every_s"`
}

// bench is one run.
type bench struct {
	cfg    config
	bin    string
	logDir string
	env    []string // added to the Go children's environment
	origin *origin
	http   *http.Client
	rep    *Report
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	killChildren()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "bench/memory:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	defer func() { // the children go on every way out, a panic included
		if p := recover(); p != nil {
			killChildren()
			panic(p)
		}
	}()
	defer killChildren()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	started := time.Now()

	b := &bench{cfg: cfg, http: newHTTPClient(10*time.Second, 16), rep: &Report{
		Date: started.UTC().Format(time.RFC3339), Command: commandLine(), NProc: runtime.NumCPU(),
		GoVersion: runtime.Version(), Kernel: kernel(),
		Settings: settings{Channels: cfg.channels, SegmentBytes: cfg.segmentSize, SegmentInterval: cfg.segmentInterval.String(),
			BaselineBytes: cfg.baselineSize, Window: cfg.window, SlowPlayers: cfg.slowPlayers, SlowHold: cfg.slowHold.String(),
			SlowRate: cfg.slowRate, SlowRcvbuf: cfg.slowRcvbuf, CacheSizes: cfg.cacheSizes, ProxyInterval: cfg.proxyInterval.String(),
			TrackerClients: cfg.trackerClients, TrackerDuration: cfg.trackerDuration.String(), ChildGOGC: cfg.gogc,
			RSSSamples: cfg.samples, RSSSampleEverySecs: cfg.sampleEvery.Seconds()},
	}}
	if cfg.gctrace {
		b.env = append(b.env, "GODEBUG=gctrace=1")
		b.rep.Settings.ChildGODEBUG = "gctrace=1"
	}
	if cfg.gogc != "" {
		b.env = append(b.env, "GOGC="+cfg.gogc)
	}
	b.raiseNoFile()

	switch {
	case cfg.logDir != "":
		b.logDir = cfg.logDir
	case cfg.jsonPath != "":
		b.logDir = filepath.Dir(cfg.jsonPath)
	}
	tmp, err := os.MkdirTemp("", "rawflow-memory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if b.logDir == "" {
		b.logDir = filepath.Join(tmp, "logs")
	}
	if err = os.MkdirAll(b.logDir, 0o755); err != nil {
		return err
	}
	b.rep.LogDir = b.logDir
	if b.bin, err = build(ctx, cfg.bin, tmp, stderr); err != nil {
		return err
	}
	b.rep.Binary = b.bin
	b.rep.Git.Commit, b.rep.Git.Modified = gitState(ctx)
	if b.origin, err = newOrigin(ctx); err != nil {
		return err
	}
	defer b.origin.close()

	progress := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	phases := map[string]func(context.Context, func(string, ...any)) error{
		"gateway": b.gatewayPhase, "slow": b.slowPhase, "proxy": b.proxyPhase, "tracker": b.trackerPhase,
	}
	for _, name := range allPhases {
		if !slices.Contains(cfg.phases, name) {
			continue
		}
		if ctx.Err() != nil {
			b.rep.Errors = append(b.rep.Errors, name+": not run: "+context.Cause(ctx).Error())
			continue
		}
		progress("phase %s", name)
		if err := phases[name](ctx, progress); err != nil {
			progress("phase %s failed: %v", name, err)
			b.rep.Errors = append(b.rep.Errors, name+": "+err.Error())
		}
		killChildren() // whatever a failed phase left behind
	}
	b.rep.WallSeconds = time.Since(started).Seconds()

	printReport(stdout, b.rep)
	if cfg.jsonPath != "" {
		out, err := json.MarshalIndent(b.rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonPath, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	if len(b.rep.Errors) > 0 {
		return fmt.Errorf("%d phase(s) failed: %s", len(b.rep.Errors), strings.Join(b.rep.Errors, "; "))
	}
	return nil
}

// raiseNoFile raises the bench's RLIMIT_NOFILE soft limit to its hard limit (Go does so at
// start since Go 1.19; this makes it explicit, and the children inherit it).
func (b *bench) raiseNoFile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.rep.NoFile.Bench = "getrlimit: " + err.Error()
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	b.rep.NoFile.Bench = fmt.Sprintf("%d soft / %d hard", lim.Cur, lim.Max)
	need := uint64(b.cfg.slowPlayers) + 200
	b.rep.NoFile.Note = fmt.Sprintf("the slow-player phase needs about %d descriptors in the bench and as many in the gateway; "+
		"Go (since 1.19) raises its own soft limit to the hard one at start, so the gateway needs nothing beyond a hard limit that high", need)
	if lim.Cur < need {
		b.rep.NoFile.Note += fmt.Sprintf("; WARNING: the hard limit %d is below that", lim.Max)
	}
}

// build builds cmd/rawflow once (CGO_ENABLED=0) into dir, unless bin is given.
func build(ctx context.Context, bin, dir string, stderr io.Writer) (string, error) {
	if bin != "" {
		return filepath.Abs(bin)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "rawflow")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/rawflow")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	fmt.Fprintf(stderr, "%s  building %s (CGO_ENABLED=0 go build ./cmd/rawflow)\n", time.Now().Format("15:04:05"), out)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/rawflow: %w", err)
	}
	return out, nil
}

// gitState returns the HEAD commit and the modified tracked files, when git is at hand.
func gitState(ctx context.Context) (string, []string) {
	root, err := moduleRoot()
	if err != nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		b, _ := cmd.Output()
		return strings.TrimSpace(string(b))
	}
	var modified []string
	for line := range strings.SplitSeq(out("status", "--porcelain", "--untracked-files=no"), "\n") {
		if f := strings.TrimSpace(line); f != "" {
			modified = append(modified, f)
		}
	}
	return out("rev-parse", "--short=12", "HEAD"), modified
}

// commandLine is how the bench was run: "go run ./bench/memory ARGS" when go run built it.
func commandLine() []string {
	if strings.Contains(os.Args[0], "go-build") {
		return append([]string{"go", "run", "./bench/memory"}, os.Args[1:]...)
	}
	return os.Args
}

func kernel() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return runtime.GOOS
	}
	str := func(a [65]int8) string {
		b := make([]byte, 0, len(a))
		for _, c := range a {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		return string(b)
	}
	return str(u.Sysname) + " " + str(u.Release) + " " + str(u.Machine)
}
