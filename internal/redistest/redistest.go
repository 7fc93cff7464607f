package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	binary = "redis-server"
	// startAttempts is how many free ports StartServer tries: another process can take the
	// port between our picking it and redis binding it.
	startAttempts = 5
	// readyTimeout bounds the wait for a started server to answer PING.
	readyTimeout = 5 * time.Second
	// pollEvery is the pause between readiness probes of the external process.
	pollEvery = 20 * time.Millisecond
	// probeTimeout bounds one readiness probe.
	probeTimeout = 200 * time.Millisecond
)

// Server is one redis-server process owned by a test. It can be stopped and started again
// on the same port, to test how clients ride out an outage.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	secure *secure // TLS and a password (StartSecure); nil for a plain server
	// argv, when set, gives the whole command line for a port instead of the default
	// (cluster nodes and sentinels, topology.go).
	argv func(port int) []string

	mu   sync.Mutex // guards the following field
	proc *process   // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
}

// Start starts a redis-server for t and returns its URL, redis://127.0.0.1:PORT/0.
func Start(t testing.TB) string {
	t.Helper()
	return StartServer(t).URL()
}

// StartServer starts a redis-server for t on a free 127.0.0.1 port and waits until it
// answers PING. The server is killed when t ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return startWith(t, nil)
}

// startWith starts a server whose command line argv gives (nil: the default one) on a
// free port, retrying on another port when the first is taken.
func startWith(t testing.TB, argv func(dir string, port int) []string) *Server {
	t.Helper()
	s := &Server{t: t, bin: lookPath(t), dir: t.TempDir()}
	if argv != nil {
		s.argv = func(port int) []string { return argv(s.dir, port) }
	}
	t.Cleanup(s.Stop)
	var err error
	for range startAttempts {
		if s.port, err = freePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

// URL returns the server's URL, for redis.ParseURL: redis://127.0.0.1:PORT/0, or for a
// secure server rediss://:PASSWORD@127.0.0.1:PORT/0.
func (s *Server) URL() string {
	if s.secure != nil {
		return s.secure.url(s.port)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Stop kills the server and waits for it to exit. Data is lost: nothing is persisted.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Kill() // fails only if it has already exited
	<-s.proc.done
	s.proc = nil
}

// Start starts a stopped server again on the same port and waits until it answers PING.
// Starting a running server does nothing.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// start launches redis-server on s.port and waits until it is ready.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	logFile := filepath.Join(s.dir, "redis.log")
	args := []string{"--port", strconv.Itoa(s.port)}
	switch {
	case s.argv != nil:
		args = s.argv(s.port)
	case s.secure != nil:
		args = s.secure.args(s.port)
	}
	args = append(args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", logFile)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status is of no interest: Stop kills it
		close(p.done)
	}()
	if err := waitReady(s.probe, p.done); err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s on port %d: %w; log:\n%s", s.bin, s.port, err, logTail(logFile))
	}
	s.proc = p
	return nil
}

// waitReady polls with probe until it succeeds, the process exits (done closes), or
// readyTimeout passes. Polling is the only way to learn that an external process is ready.
func waitReady(probe func() error, done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", readyTimeout, err)
		}
		select {
		case <-done:
			return errors.New("exited before answering PING")
		case <-tick.C:
		}
	}
}

// probe sends one inline PING (after AUTH, over TLS, for a secure server) and expects
// +PONG.
func (s *Server) probe() error {
	var conn net.Conn
	var err error
	if s.secure != nil {
		conn, err = s.secure.dial(s.Addr())
	} else {
		conn, err = net.DialTimeout("tcp", s.Addr(), probeTimeout)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	if s.secure != nil {
		if err := command(conn, r, "AUTH "+s.secure.password, "+OK"); err != nil {
			return err
		}
	}
	return command(conn, r, "PING", "+PONG")
}

// command sends one inline command and expects the reply want.
func command(conn net.Conn, r *bufio.Reader, cmd, want string) error {
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(line); got != want {
		return fmt.Errorf("%s answered %q", strings.Fields(cmd)[0], got)
	}
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lookPath finds redis-server, or ends the test as lookTool does.
func lookPath(t testing.TB) string {
	t.Helper()
	return lookTool(t, binary, "redis-server")
}

// logTail returns the end of the server's log file, for error messages.
func logTail(path string) string {
	const keep = 2048
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}
