package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rawflow/rawflow/swarm"
)

// loadResult is one closed-loop load: C clients, each doing one call after another.
type loadResult struct {
	Name      string  `json:"name"`
	Clients   int     `json:"clients"`
	Seconds   float64 `json:"seconds"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	OpsPerSec float64 `json:"ops_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MeanMs    float64 `json:"mean_ms"`
	// CPU used during the load, in cores (CPU seconds / wall seconds).
	GatewayCores float64 `json:"gateway_cores"`
	RedisCores   float64 `json:"redis_cores"`
	BenchCores   float64 `json:"bench_cores"`
	HostBusy     float64 `json:"host_busy_cores"`  // the whole machine (/proc/stat)
	HostSteal    float64 `json:"host_steal_cores"` // taken by the hypervisor from this VM
	// VsPing is OpsPerSec over the go-redis PING rate at the same concurrency.
	VsPing float64 `json:"vs_redis_ping,omitempty"`
}

// trackerRun is phase 4.
type trackerRun struct {
	RedisVersion string       `json:"redis_version"`
	Clients      int          `json:"clients"`
	Duration     string       `json:"duration"`
	TrackerRate  string       `json:"gateway_tracker_rate"`
	GatewayPool  string       `json:"gateway_redis_pool"`
	Results      []loadResult `json:"results"`
}

// maxLatencies bounds the latencies one client records.
const maxLatencies = 1 << 20

// runLoad runs op from clients goroutines for dur and measures it. An op cut short by
// the end of the load is not counted.
func runLoad(ctx context.Context, name string, clients int, dur time.Duration, pids [3]int,
	op func(ctx context.Context, client int) error) loadResult {
	r := loadResult{Name: name, Clients: clients}
	lat := make([][]time.Duration, clients)
	var errs atomic.Int64
	var first atomic.Pointer[string]
	lctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var cpu0 [3]float64
	for i, pid := range pids {
		cpu0[i] = cpuSeconds(pid)
	}
	busy0, steal0 := hostCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for lctx.Err() == nil {
				t0 := time.Now()
				err := op(lctx, c)
				d := time.Since(t0)
				if lctx.Err() != nil {
					return
				}
				if err != nil {
					errs.Add(1)
					s := err.Error()
					first.CompareAndSwap(nil, &s)
					continue
				}
				if len(lat[c]) < maxLatencies {
					lat[c] = append(lat[c], d)
				}
			}
		})
	}
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	var cores [3]float64
	for i, pid := range pids {
		if pid > 0 {
			cores[i] = (cpuSeconds(pid) - cpu0[i]) / r.Seconds
		}
	}
	r.GatewayCores, r.RedisCores, r.BenchCores = cores[0], cores[1], cores[2]
	busy1, steal1 := hostCPU()
	r.HostBusy, r.HostSteal = (busy1-busy0)/r.Seconds, (steal1-steal0)/r.Seconds
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r.Ops, r.Errors = int64(len(all)), errs.Load()
	if s := first.Load(); s != nil {
		r.FirstErr = *s
	}
	r.OpsPerSec = float64(r.Ops) / r.Seconds
	if len(all) > 0 {
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		r.P50Ms, r.P99Ms = ms(all[len(all)/2]), ms(all[min(len(all)-1, len(all)*99/100)])
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		r.MeanMs = ms(sum / time.Duration(len(all)))
	}
	return r
}

// startRedis starts a throwaway redis-server on a free loopback port (no persistence; as
// internal/redistest does for the tests) and waits until it answers PING.
func (b *bench) startRedis(ctx context.Context, dir string) (*child, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("redis-server not found (make deps installs it): %w", err)
	}
	var last error
	for range 3 {
		port, err := freePort(ctx)
		if err != nil {
			return nil, "", err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c, err := startChild(ctx, "redis", filepath.Join(b.logDir, "redis.log"), nil, bin, "--port", strconv.Itoa(port),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "")
		if err != nil {
			return nil, "", err
		}
		rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
			WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
		deadline := time.Now().Add(5 * time.Second)
		for last = errors.New("not started"); time.Now().Before(deadline) && !c.exited(); {
			if last = rc.Ping(ctx).Err(); last == nil {
				break
			}
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				last = err
				break
			}
		}
		rc.Close()
		if last == nil {
			return c, addr, nil
		}
		c.stop(time.Second)
		last = fmt.Errorf("redis-server on %s: %w: %s", addr, last, c.logTail(600))
	}
	return nil, "", last
}

// errJoined ends a join's event stream once its hello came.
var errJoined = errors.New("joined")

// trackerPhase is phase 4: a gateway on a real Redis; joins (an event stream opened until
// its hello) and reports through its tracker API with the real client (swarm.Client), then
// the registry calls behind them straight to Redis (swarm.Redis, no HTTP: subscribe, and the
// roster the planner reads), then go-redis PINGs: all at the same concurrency.
func (b *bench) trackerPhase(ctx context.Context, progress func(string, ...any)) error {
	c := b.cfg.trackerClients
	dur := b.cfg.trackerDuration
	r := &trackerRun{Clients: c, Duration: dur.String(), TrackerRate: "1e6 (--tracker-rate, --join-rate, --peer-rate 1000000: a bench is one address and calls flat out)",
		GatewayPool: "go-redis pool of 16 (swarm/redis.go redisPoolSize; the URL's pool_size= would change it)"}
	b.rep.Tracker = r
	dir, err := os.MkdirTemp("", "rawflow-memory-redis-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rs, addr, err := b.startRedis(ctx, dir)
	if err != nil {
		return err
	}
	defer rs.stop(2 * time.Second)
	rc := redis.NewClient(&redis.Options{Addr: addr, PoolSize: c, MinIdleConns: c, DialTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, ContextTimeoutEnabled: true})
	defer rc.Close()
	if info, ierr := rc.Info(ctx, "server").Result(); ierr == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				r.RedisVersion = v
			}
		}
	}
	const channel = "c0"
	g, err := b.startGateway(ctx, "gateway-tracker", []string{channel + "=" + b.origin.url("tracker-c0", b.cfg.baselineSize, b.cfg.segmentInterval)},
		"--redis", "redis://"+addr+"/0", "--tracker-rate", "1000000", "--join-rate", "1000000", "--peer-rate", "1000000")
	if err != nil {
		return err
	}
	defer g.c.stop(3 * time.Second)
	pids := [3]int{g.c.pid(), rs.pid(), os.Getpid()}

	// The real client, over one transport that keeps a connection per client alive.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost, tr.Proxy = c, nil
	defer tr.CloseIdleConnections()
	gwURL, _ := url.Parse(g.base)
	client := swarm.NewClient(gwURL, &http.Client{Transport: tr}, 5*time.Second)
	type peer struct {
		id, token, addr string
	}
	peers := make([]peer, c)
	// join opens peer i's event stream and reads its hello: a proxy's join.
	join := func(ctx context.Context, i int) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // the stream closes: the peer leaves
		sub := swarm.Subscription{Channel: channel, Renditions: []string{""}, Addr: peers[i].addr}
		err := client.Events(ctx, sub, peers[i].id, peers[i].token, func(ev swarm.Event) error {
			var h swarm.Hello
			if err := json.Unmarshal(ev.Data, &h); err != nil {
				return err
			}
			peers[i].id, peers[i].token = h.PeerID, h.Token
			return errJoined
		})
		if errors.Is(err, errJoined) {
			return nil
		}
		return err
	}
	for i := range peers {
		peers[i].addr = "127.0.0.1:" + strconv.Itoa(20000+i)
		if err := join(ctx, i); err != nil {
			return fmt.Errorf("first join: %w", err)
		}
	}
	report := func(res loadResult) {
		r.Results = append(r.Results, res)
		progress("  %-24s %9.0f ops/s  p50 %.2f ms  p99 %.2f ms  errors %d", res.Name, res.OpsPerSec, res.P50Ms, res.P99Ms, res.Errors)
	}

	progress("tracker: %d clients, %v each, Redis %s", c, dur, r.RedisVersion)
	report(runLoad(ctx, "join (gateway stream)", c, dur, pids, join))
	report(runLoad(ctx, "report (gateway HTTP)", c, dur, pids, func(ctx context.Context, i int) error {
		return client.Report(ctx, swarm.ReportRequest{PeerID: peers[i].id, Token: peers[i].token, Channel: channel,
			Stats: swarm.Counters{BytesFromPeers: 1000}})
	}))

	reg := swarm.NewRedis(rc, swarm.Options{})
	report(runLoad(ctx, "subscribe (registry)", c, dur, pids, func(ctx context.Context, i int) error {
		_, err := reg.Subscribe(ctx, swarm.Peer{ID: peers[i].id, Channel: channel, Addr: peers[i].addr, PublicIP: "127.0.0.1"}, []string{""})
		return err
	}))
	report(runLoad(ctx, "roster (registry)", c, dur, pids, func(ctx context.Context, _ int) error {
		_, err := reg.Roster(ctx, channel, "", "")
		return err
	}))
	ping := runLoad(ctx, "PING (go-redis)", c, dur, pids, func(ctx context.Context, _ int) error {
		return rc.Ping(ctx).Err()
	})
	report(ping)
	if ping.OpsPerSec > 0 {
		for i := range r.Results {
			r.Results[i].VsPing = r.Results[i].OpsPerSec / ping.OpsPerSec
		}
	}
	var errs []error
	for _, res := range r.Results {
		if res.Ops == 0 {
			errs = append(errs, fmt.Errorf("%s: no call succeeded: %s", res.Name, res.FirstErr))
		}
	}
	return errors.Join(errs...)
}
