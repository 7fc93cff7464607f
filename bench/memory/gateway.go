package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A benchmark tool, not part of the rawflow binary: this file (about 420 lines) is the
// gateway scenario — its origin, its players and its figures — in one place.

// gw is a gateway child.
type gw struct {
	c    *child
	base string // http://127.0.0.1:PORT
	port int
}

// startGateway starts a gateway child serving channels (NAME=URL each), with extra flags.
func (b *bench) startGateway(ctx context.Context, label string, channels []string, extra ...string) (*gw, error) {
	var last error
	for range 3 { // another process may take the free port first
		port, err := freePort(ctx)
		if err != nil {
			return nil, err
		}
		args := []string{"gateway", "--listen", "127.0.0.1:" + strconv.Itoa(port), "--log-level", "warn",
			"--window", strconv.Itoa(b.cfg.window)}
		for _, ch := range channels {
			args = append(args, "--channel", ch)
		}
		args = append(args, extra...)
		c, err := startChild(ctx, label, filepath.Join(b.logDir, label+".log"), b.env, b.bin, args...)
		if err != nil {
			return nil, err
		}
		g := &gw{c: c, base: "http://127.0.0.1:" + strconv.Itoa(port), port: port}
		if last = waitHealthy(ctx, c, g.base, 20*time.Second); last == nil {
			return g, nil
		}
		c.stop(time.Second)
		if !strings.Contains(last.Error(), "address already in use") {
			break
		}
	}
	return nil, last
}

// windowState is what /metrics said of the windows when they were deemed full.
type windowState struct {
	Bytes       int64   `json:"window_bytes"`
	Segments    int     `json:"window_segments"`
	Stable      bool    `json:"stable"`
	WaitSeconds float64 `json:"wait_s"`
}

// waitWindows polls the gateway's /metrics until the sum of rawflow_gateway_window_bytes
// is at least 80% of k full windows and has been stable (within 15%) for six polls (3 s),
// after the time retired segments need to pile up (they stay fetchable for their duration
// plus the playlist's, gateway/window.go retireOldest). Bounded: after a minute more it
// returns what it has, with Stable false.
func (b *bench) waitWindows(ctx context.Context, g *gw, k, segSize int, interval time.Duration) (windowState, error) {
	need := int64(float64(k*b.cfg.window*segSize) * 0.8)
	minWait := time.Duration(2*b.cfg.window+2)*interval + 2*time.Second
	limit := minWait + time.Minute
	start := time.Now()
	var hist []int64
	var st windowState
	for time.Since(start) < limit {
		if g.c.exited() {
			return st, fmt.Errorf("gateway exited: %s", g.c.logTail(800))
		}
		m, err := scrape(ctx, b.http, g.base+"/metrics")
		if err == nil {
			st.Bytes, st.Segments = int64(m["rawflow_gateway_window_bytes"]), int(m["rawflow_gateway_window_segments"])
			hist = append(hist, st.Bytes)
			if n := len(hist); n >= 6 && time.Since(start) >= minWait && st.Bytes >= need {
				lo, hi := slicesMinMax(hist[n-6:])
				if float64(hi-lo) <= 0.15*float64(hi) {
					st.Stable, st.WaitSeconds = true, time.Since(start).Seconds()
					return st, nil
				}
			}
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return st, err
		}
	}
	st.WaitSeconds = time.Since(start).Seconds()
	return st, nil
}

func slicesMinMax(v []int64) (lo, hi int64) {
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// gatewayRun is one gateway measured with full windows.
type gatewayRun struct {
	Label        string      `json:"label"`
	Channels     int         `json:"channels"`
	SegmentBytes int         `json:"segment_bytes"`
	Window       windowState `json:"window"`
	RSS          rssStat     `json:"rss"`
	GC           gcTrace     `json:"gc"`
	// Per channel, against the baseline (K runs only): (VmRSS max − baseline VmRSS max) / K,
	// the window bytes per channel, and the bar 1.5 × that + 50 MiB.
	PerChannelRSS    int64 `json:"per_channel_rss,omitempty"`
	PerChannelWindow int64 `json:"per_channel_window_bytes,omitempty"`
	PerChannelBar    int64 `json:"per_channel_bar,omitempty"`
	Pass             *bool `json:"pass,omitempty"`
}

// measureGateway starts a gateway with k channels of segSize-byte segments, waits for full
// windows and reads its RSS. The gateway is stopped before it returns.
func (b *bench) measureGateway(ctx context.Context, label string, k, segSize int) (gatewayRun, error) {
	r := gatewayRun{Label: label, Channels: k, SegmentBytes: segSize}
	var chans []string
	for i := range k {
		name := fmt.Sprintf("c%d", i)
		chans = append(chans, name+"="+b.origin.url(label+"-"+name, segSize, b.cfg.segmentInterval))
	}
	g, err := b.startGateway(ctx, "gateway-"+label, chans)
	if err != nil {
		return r, err
	}
	defer g.c.stop(3 * time.Second)
	if r.Window, err = b.waitWindows(ctx, g, k, segSize, b.cfg.segmentInterval); err != nil {
		return r, err
	}
	if r.RSS, err = sampleMem(ctx, g.c.pid(), b.cfg.samples, b.cfg.sampleEvery); err != nil {
		return r, err
	}
	r.GC = lastGC(g.c.log, 0)
	return r, nil
}

// gatewayPhase is phase 1: the baseline, then each K.
func (b *bench) gatewayPhase(ctx context.Context, progress func(string, ...any)) error {
	progress("gateway baseline: 1 channel of %d-byte segments", b.cfg.baselineSize)
	base, err := b.measureGateway(ctx, "base", 1, b.cfg.baselineSize)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	b.rep.Baseline = &base
	progress("  RSS %s (window %d bytes)", mib(base.RSS.VMRSSMax), base.Window.Bytes)
	var errs []error
	for _, k := range b.cfg.channels {
		progress("gateway with %d channel(s) of %d-byte segments every %v", k, b.cfg.segmentSize, b.cfg.segmentInterval)
		r, err := b.measureGateway(ctx, "k"+strconv.Itoa(k), k, b.cfg.segmentSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("with K=%d: %w", k, err))
			continue
		}
		r.PerChannelRSS = (r.RSS.VMRSSMax - base.RSS.VMRSSMax) / int64(k)
		r.PerChannelWindow = r.Window.Bytes / int64(k)
		r.PerChannelBar = r.PerChannelWindow*3/2 + 50<<20
		pass := r.PerChannelRSS <= r.PerChannelBar
		r.Pass = &pass
		b.rep.Gateway = append(b.rep.Gateway, r)
		progress("  RSS %s, window %s, per channel %s against a bar of %s", mib(r.RSS.VMRSSMax), mib(r.Window.Bytes),
			mib(r.PerChannelRSS), mib(r.PerChannelBar))
	}
	return errors.Join(errs...)
}

// slowRun is phase 2.
type slowRun struct {
	Players         int         `json:"players"`
	Connected       int         `json:"connected"`
	Got200          int         `json:"got_200"`
	DialErrors      int         `json:"dial_errors"`
	FirstDialError  string      `json:"first_dial_error,omitempty"`
	ReadErrors      int         `json:"read_errors"`
	FirstReadError  string      `json:"first_read_error,omitempty"`
	RcvBuf          int         `json:"rcvbuf"`
	RateBytesPerSec int         `json:"rate_bytes_per_s"`
	HoldSeconds     float64     `json:"hold_s"`
	DialSeconds     float64     `json:"dial_s"`
	Segment         string      `json:"segment"`
	SegmentBytes    int         `json:"segment_bytes"`
	BytesRead       int64       `json:"bytes_read"`
	Window          windowState `json:"window"`
	Before          rssStat     `json:"rss_before"`
	During          rssStat     `json:"rss_during"`
	After           rssStat     `json:"rss_after"`
	PerConnection   float64     `json:"per_connection_bytes"` // (peak during − before max) / connected
	// SendQueue is the most the kernel held in the gateway's sockets' send queues during the
	// hold (/proc/net/tcp tx_queue): memory the slow players cost outside the RSS.
	SendQueueBytes   int64 `json:"kernel_send_queue_bytes"`
	SendQueueSockets int   `json:"kernel_send_queue_sockets"`
	// TCPMemBefore and TCPMemPeak are the kernel's TCP buffer memory in this network
	// namespace (/proc/net/sockstat), before and at most during the hold.
	TCPMemBefore  int64   `json:"kernel_tcp_mem_before"`
	TCPMemPeak    int64   `json:"kernel_tcp_mem_peak"`
	GatewayCPU    float64 `json:"gateway_cpu_s"`
	HealthyAfter  bool    `json:"healthy_after"`
	HealthError   string  `json:"health_error,omitempty"`
	GatewayNoFile string  `json:"gateway_nofile"`
	GCBefore      gcTrace `json:"gc_before"`
	GCAfter       gcTrace `json:"gc_after"`
}

// slowPhase is phase 2: N connections to a one-channel gateway, each asking for the newest
// segment and reading it slowly through a small receive buffer, so that the gateway's
// writes stay blocked; the gateway's RSS before, during and after.
func (b *bench) slowPhase(ctx context.Context, progress func(string, ...any)) error {
	n := b.cfg.slowPlayers
	r := &slowRun{Players: n, RcvBuf: b.cfg.slowRcvbuf, RateBytesPerSec: b.cfg.slowRate, SegmentBytes: b.cfg.segmentSize}
	b.rep.Slow = r
	g, err := b.startGateway(ctx, "gateway-slow", []string{"c0=" + b.origin.url("slow-c0", b.cfg.segmentSize, b.cfg.segmentInterval)})
	if err != nil {
		return err
	}
	defer g.c.stop(3 * time.Second)
	r.GatewayNoFile = openFilesLimit(g.c.pid())
	b.rep.NoFile.Gateway = r.GatewayNoFile
	if r.Window, err = b.waitWindows(ctx, g, 1, b.cfg.segmentSize, b.cfg.segmentInterval); err != nil {
		return err
	}
	if r.Before, err = sampleMem(ctx, g.c.pid(), 3, b.cfg.sampleEvery); err != nil {
		return err
	}
	r.GCBefore = lastGC(g.c.log, 0)
	body, err := get(ctx, b.http, g.base+"/live/c0/index.m3u8", 1<<20)
	if err != nil {
		return err
	}
	uris := segmentURIs(body)
	if len(uris) == 0 {
		return errors.New("the gateway listed no segment")
	}
	r.Segment = uris[len(uris)-1]
	progress("%d slow players on %s (SO_RCVBUF %d, %d B/s each) for %v", n, r.Segment, r.RcvBuf, r.RateBytesPerSec, b.cfg.slowHold)
	req := []byte("GET /live/c0/" + r.Segment + " HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(g.port) +
		"\r\nUser-Agent: rawflow-bench-slow-player\r\nAccept: */*\r\n\r\n")

	r.TCPMemBefore = tcpMemory()
	cpu0 := cpuSeconds(g.c.pid())
	pctx, cancel := context.WithTimeout(ctx, b.cfg.slowHold+90*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var (
		wg, dialed      sync.WaitGroup
		mu              sync.Mutex
		read            atomic.Int64
		connected, ok   atomic.Int64
		dialErrs, rErrs atomic.Int64
	)
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		cerr := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, b.cfg.slowRcvbuf)
		})
		return errors.Join(cerr, serr)
	}}
	chunk := max(1, b.cfg.slowRate/10)
	sem := make(chan struct{}, 64) // connections being set up at once
	dialStart := time.Now()
	for i := range n {
		wg.Add(1)
		dialed.Add(1)
		go func() {
			defer wg.Done()
			conn, dialErr := dialSlowPlayer(pctx, dialer, sem, g.port, req)
			dialed.Done()
			if dialErr != nil {
				if dialErrs.Add(1) == 1 {
					mu.Lock()
					r.FirstDialError = dialErr.Error()
					mu.Unlock()
				}
				return
			}
			defer conn.Close()
			connected.Add(1)
			buf := make([]byte, chunk)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			first := true
			for {
				select {
				case <-stop:
					return
				case <-pctx.Done():
					return
				case <-tick.C:
				}
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				m, readErr := conn.Read(buf)
				read.Add(int64(m))
				if first && m > 0 {
					first = false
					if bytes.HasPrefix(buf[:m], []byte("HTTP/1.1 200 ")) {
						ok.Add(1)
					}
				}
				if readErr != nil {
					if rErrs.Add(1) == 1 {
						mu.Lock()
						r.FirstReadError = fmt.Sprintf("player %d: %v", i, readErr)
						mu.Unlock()
					}
					return
				}
			}
		}()
	}
	// Sample while the connections are set up and held.
	var during []mem
	sampleDuring := func() {
		if m, merr := readMem(g.c.pid()); merr == nil {
			during = append(during, m)
		}
		if q, s := sendQueue(g.port); q > r.SendQueueBytes {
			r.SendQueueBytes, r.SendQueueSockets = q, s
		}
		r.TCPMemPeak = max(r.TCPMemPeak, tcpMemory())
	}
	dialDone := make(chan struct{})
	go func() { dialed.Wait(); close(dialDone) }()
	for waiting := true; waiting; {
		select {
		case <-dialDone:
			waiting = false
		case <-pctx.Done():
			close(stop)
			wg.Wait()
			return fmt.Errorf("setting up the slow players: %w", pctx.Err())
		case <-time.After(250 * time.Millisecond):
			sampleDuring()
		}
	}
	r.DialSeconds = time.Since(dialStart).Seconds()
	holdStart := time.Now()
	for time.Since(holdStart) < b.cfg.slowHold && pctx.Err() == nil {
		sampleDuring()
		_ = sleep(pctx, 250*time.Millisecond)
	}
	sampleDuring()
	r.HoldSeconds = time.Since(holdStart).Seconds()
	r.Connected, r.Got200 = int(connected.Load()), int(ok.Load())
	r.GatewayCPU = cpuSeconds(g.c.pid()) - cpu0
	close(stop)
	wg.Wait()
	r.DialErrors, r.ReadErrors, r.BytesRead = int(dialErrs.Load()), int(rErrs.Load()), read.Load()
	r.During = summarize(during)
	if r.Connected > 0 {
		r.PerConnection = float64(r.During.VMRSSMax-r.Before.VMRSSMax) / float64(r.Connected)
	}
	progress("  %d connected, %d got 200; RSS before %s, peak %s (%.1f KiB per connection)", r.Connected, r.Got200,
		mib(r.Before.VMRSSMax), mib(r.During.VMRSSMax), r.PerConnection/1024)
	_ = sleep(ctx, 2*time.Second) // the gateway notices the closed connections
	if r.After, err = sampleMem(ctx, g.c.pid(), 3, b.cfg.sampleEvery); err != nil {
		return err
	}
	r.GCAfter = lastGC(g.c.log, 0)
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
	defer hcancel()
	if _, err := get(hctx, b.http, g.base+"/healthz", 64); err != nil {
		r.HealthError = err.Error()
	} else {
		r.HealthyAfter = true
	}
	if r.Connected < n {
		return fmt.Errorf("only %d of %d slow players connected (first error: %s)", r.Connected, n, r.FirstDialError)
	}
	if !r.HealthyAfter {
		return fmt.Errorf("gateway unhealthy after the slow players: %s", r.HealthError)
	}
	return nil
}

// dialSlowPlayer connects a slow player to the gateway on port, once one of sem's slots is
// free, and sends it req; the slot is freed on return.
func dialSlowPlayer(ctx context.Context, dialer *net.Dialer, sem chan struct{}, port int, req []byte) (net.Conn, error) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()
	conn, err := dialer.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(req); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// segmentURIs returns the URI lines of a media playlist.
func segmentURIs(body []byte) []string {
	var out []string
	for line := range strings.SplitSeq(string(body), "\n") {
		if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
			out = append(out, line)
		}
	}
	return out
}

func mib(b int64) string {
	if b != 0 && b < 1<<20 && b > -1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
