package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A benchmark tool, not part of the rawflow binary: this file (about 460 lines) starts and
// measures the processes under test (/proc, smaps, their HTTP endpoints); kept whole so the
// measuring code reads in one place.

// child is one process the bench started: a gateway, a proxy or redis-server. Every child
// is registered so that killChildren can end them all on any way out (error, panic,
// signal); each is also started with Pdeathsig, so the kernel kills it if the bench dies.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string        // path of its stdout+stderr
	done chan struct{} // closed once it has exited
}

var children struct {
	sync.Mutex
	list []*child
}

// startChild starts bin with args, its output appended to logPath, env added to ours. The
// child is killed if ctx ends first (as killChildren would, on the way out of the run).
func startChild(ctx context.Context, name, logPath string, env []string, bin string, args ...string) (*child, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "### %s %s %s\n", time.Now().UTC().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	children.Lock()
	children.list = append(children.list, c)
	children.Unlock()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the child to end (SIGTERM) and kills it after grace. It waits for the exit.
func (c *child) stop(grace time.Duration) {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// killChildren kills every child still running, without grace.
func killChildren() {
	children.Lock()
	defer children.Unlock()
	for _, c := range children.list {
		if !c.exited() {
			_ = c.cmd.Process.Kill()
		}
	}
	for _, c := range children.list {
		select {
		case <-c.done:
		case <-time.After(3 * time.Second):
		}
	}
}

// logTail returns the last n bytes of the child's log.
func (c *child) logTail(n int) string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// mem is one reading of /proc/PID/status, in bytes.
type mem struct {
	VMRSS, RssAnon, RssFile, RssShmem, VMHWM int64
}

// readMem reads the child's memory figures from /proc/PID/status.
func readMem(pid int) (mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}, err
	}
	var m mem
	fields := map[string]*int64{"VmRSS:": &m.VMRSS, "RssAnon:": &m.RssAnon, "RssFile:": &m.RssFile,
		"RssShmem:": &m.RssShmem, "VmHWM:": &m.VMHWM}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			if p := fields[f[0]]; p != nil {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				*p = kb << 10
			}
		}
	}
	if m.VMRSS == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return m, nil
}

// rssStat sums up a few readings: means, and the largest VmRSS.
type rssStat struct {
	Samples      int   `json:"samples"`
	VMRSSMean    int64 `json:"vm_rss_mean"`
	VMRSSMax     int64 `json:"vm_rss_max"`
	VMRSSMin     int64 `json:"vm_rss_min"`
	RssAnonMean  int64 `json:"rss_anon_mean"`
	RssFileMean  int64 `json:"rss_file_mean"`
	RssShmemMean int64 `json:"rss_shmem_mean"`
	VMHWM        int64 `json:"vm_hwm"` // the kernel's peak RSS since the process started
}

func summarize(ms []mem) rssStat {
	s := rssStat{Samples: len(ms)}
	if len(ms) == 0 {
		return s
	}
	s.VMRSSMin = ms[0].VMRSS
	for _, m := range ms {
		s.VMRSSMean += m.VMRSS
		s.RssAnonMean += m.RssAnon
		s.RssFileMean += m.RssFile
		s.RssShmemMean += m.RssShmem
		s.VMRSSMax = max(s.VMRSSMax, m.VMRSS)
		s.VMRSSMin = min(s.VMRSSMin, m.VMRSS)
		s.VMHWM = max(s.VMHWM, m.VMHWM)
	}
	n := int64(len(ms))
	s.VMRSSMean /= n
	s.RssAnonMean /= n
	s.RssFileMean /= n
	s.RssShmemMean /= n
	return s
}

// sampleMem reads the child's memory n times, every, and sums the readings up.
func sampleMem(ctx context.Context, pid, n int, every time.Duration) (rssStat, error) {
	var ms []mem
	for i := range n {
		if i > 0 {
			if err := sleep(ctx, every); err != nil {
				return summarize(ms), err
			}
		}
		m, err := readMem(pid)
		if err != nil {
			return summarize(ms), err
		}
		ms = append(ms, m)
	}
	return summarize(ms), nil
}

// cpuSeconds returns the user+system CPU time of a process (Linux clock ticks are 1/100 s).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64) // utime: field 14 of stat, 12th after ')'
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// openFilesLimit returns the "Max open files" soft and hard limits of a process.
func openFilesLimit(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) >= 2 {
				return f[0] + " soft / " + f[1] + " hard"
			}
		}
	}
	return "?"
}

// sendQueue sums the send queues (bytes the kernel holds, not yet acknowledged) of the
// IPv4 TCP sockets bound to localPort, and counts them (/proc/net/tcp).
func sendQueue(localPort int) (bytes int64, sockets int) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	suffix := fmt.Sprintf(":%04X", localPort)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 5 || !strings.HasSuffix(fl[1], suffix) || fl[3] == "0A" { // 0A: LISTEN
			continue
		}
		tx, _, _ := strings.Cut(fl[4], ":")
		n, _ := strconv.ParseInt(tx, 16, 64)
		bytes += n
		sockets++
	}
	return bytes, sockets
}

// tcpMemory returns the memory the kernel gives TCP buffers in this network namespace
// (/proc/net/sockstat "TCP: ... mem N", in pages), in bytes.
func tcpMemory() int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "TCP:") {
			continue
		}
		f := strings.Fields(line)
		for i := 1; i+1 < len(f); i++ {
			if f[i] == "mem" {
				n, _ := strconv.ParseInt(f[i+1], 10, 64)
				return n * int64(os.Getpagesize())
			}
		}
	}
	return 0
}

// hostCPU returns the machine's busy and stolen CPU time so far, in seconds (/proc/stat).
func hostCPU() (busy, steal float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var v [8]float64
	for i := range v {
		v[i], _ = strconv.ParseFloat(f[i+1], 64)
	}
	// user nice system idle iowait irq softirq steal
	return (v[0] + v[1] + v[2] + v[5] + v[6]) / 100, v[7] / 100
}

// freePort returns a loopback port that was free a moment ago.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newHTTPClient is the bench's own HTTP client: bounded in time, a pool as large as asked.
func newHTTPClient(timeout time.Duration, idle int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idle
	t.ResponseHeaderTimeout = timeout
	t.Proxy = nil // everything is on 127.0.0.1
	return &http.Client{Timeout: timeout, Transport: t}
}

// get GETs url and returns its body (at most limit bytes); any status but 200 is an error.
func get(ctx context.Context, c *http.Client, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	return b, nil
}

// scrape reads a Prometheus text page and sums each metric over its label sets; the
// metric name with its labels maps to the value too.
func scrape(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	body, err := get(ctx, c, url, 4<<20)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
		}
		out[name] += v
		if name != series {
			out[series] = v
		}
	}
	return out, nil
}

// waitHealthy polls base+"/healthz" until it answers 200, the child exits, or limit passes.
func waitHealthy(ctx context.Context, c *child, base string, limit time.Duration) error {
	client := newHTTPClient(time.Second, 1)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c.exited() {
			return fmt.Errorf("%s exited: %s", c.name, c.logTail(800))
		}
		if _, err := get(ctx, client, base+"/healthz", 64); err == nil {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not healthy after %v: %s", c.name, limit, c.logTail(800))
}

// gcTrace is what the last GODEBUG=gctrace=1 line of a Go child said: the heap at the
// start of the cycle, at its end, the live heap marked, and the next goal (MiB).
type gcTrace struct {
	Cycles     int `json:"cycles"`
	HeapStart  int `json:"heap_start_mib"`
	HeapEnd    int `json:"heap_end_mib"`
	HeapLive   int `json:"heap_live_mib"`
	HeapGoal   int `json:"heap_goal_mib"`
	StacksMiB  int `json:"stacks_mib"`
	MaxLiveMiB int `json:"max_live_mib"` // the largest live heap of any cycle in the log
}

var gcLineRe = regexp.MustCompile(`gc (\d+) @[^\n]*? (\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks`)

// lastGC parses the child's log for gctrace lines written since offset.
func lastGC(logPath string, offset int64) gcTrace {
	f, err := os.Open(logPath)
	if err != nil {
		return gcTrace{}
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return gcTrace{}
	}
	b, _ := io.ReadAll(io.LimitReader(f, 64<<20))
	var g gcTrace
	for _, m := range gcLineRe.FindAllSubmatch(b, -1) {
		n := func(i int) int { v, _ := strconv.Atoi(string(m[i])); return v }
		g = gcTrace{Cycles: n(1), HeapStart: n(2), HeapEnd: n(3), HeapLive: n(4), HeapGoal: n(5), StacksMiB: n(6),
			MaxLiveMiB: max(g.MaxLiveMiB, n(4))}
	}
	return g
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory: run from the repository")
		}
		dir = parent
	}
}
