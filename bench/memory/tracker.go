package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// HoldersMean is the mean number of holders a lookup returned (lookups only).
	HoldersMean float64 `json:"holders_mean,omitempty"`
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
	Digests      int          `json:"digests"`
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

// trackerPhase is phase 4: a gateway on a real Redis; announce and lookup through its
// tracker API with the real client (swarm.Client), then the same registry calls straight
// to Redis (swarm.Redis, no HTTP), then go-redis PINGs: all at the same concurrency.
func (b *bench) trackerPhase(ctx context.Context, progress func(string, ...any)) error {
	c := b.cfg.trackerClients
	dur := b.cfg.trackerDuration
	r := &trackerRun{Clients: c, Duration: dur.String(), TrackerRate: "1e6 (--tracker-rate 1000000: the default 100/s per address would cap one bench address)",
		GatewayPool: "go-redis pool of 16 (swarm/redis.go redisPoolSize; the URL's pool_size= would change it)", Digests: 8}
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
		"--redis", "redis://"+addr+"/0", "--tracker-rate", "1000000")
	if err != nil {
		return err
	}
	defer g.c.stop(3 * time.Second)
	pids := [3]int{g.c.pid(), rs.pid(), os.Getpid()}

	// The real client, over the process's default transport: let it keep a connection per
	// client alive (its default of 2 idle per host would make most calls dial afresh).
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = c
		t.Proxy = nil
	}
	gwURL, _ := url.Parse(g.base)
	client := swarm.NewClient(gwURL, 5*time.Second)
	digests := make([]string, r.Digests)
	for i := range digests {
		digests[i] = randomHex(32)
	}
	type peer struct {
		id, token, addr string
	}
	peers := make([]peer, c)
	for i := range peers {
		peers[i].addr = "127.0.0.1:" + strconv.Itoa(20000+i)
		resp, err := client.Announce(ctx, swarm.AnnounceRequest{Channel: channel, Addr: peers[i].addr})
		if err != nil {
			return fmt.Errorf("first announce: %w", err)
		}
		peers[i].id, peers[i].token = resp.PeerID, resp.Token
	}
	have := func() error {
		for _, p := range peers {
			if err := client.Have(ctx, swarm.HaveRequest{PeerID: p.id, Channel: channel, Token: p.token, Digests: digests}); err != nil {
				return fmt.Errorf("have: %w", err)
			}
		}
		return nil
	}
	if err := have(); err != nil {
		return err
	}
	report := func(res loadResult) {
		r.Results = append(r.Results, res)
		progress("  %-24s %9.0f ops/s  p50 %.2f ms  p99 %.2f ms  errors %d", res.Name, res.OpsPerSec, res.P50Ms, res.P99Ms, res.Errors)
	}

	progress("tracker: %d clients, %v each, Redis %s", c, dur, r.RedisVersion)
	report(runLoad(ctx, "announce (gateway HTTP)", c, dur, pids, func(ctx context.Context, i int) error {
		resp, err := client.Announce(ctx, swarm.AnnounceRequest{PeerID: peers[i].id, Token: peers[i].token, Channel: channel, Addr: peers[i].addr})
		if err == nil {
			peers[i].token = resp.Token
		}
		return err
	}))
	if err := have(); err != nil {
		return err
	}
	var holders atomic.Int64
	res := runLoad(ctx, "lookup (gateway HTTP)", c, dur, pids, func(ctx context.Context, i int) error {
		resp, err := client.Lookup(ctx, swarm.LookupRequest{PeerID: peers[i].id, Token: peers[i].token, Channel: channel,
			Digest: digests[i%len(digests)]})
		if err == nil {
			holders.Add(int64(len(resp.Holders)))
		}
		return err
	})
	if res.Ops > 0 {
		res.HoldersMean = float64(holders.Load()) / float64(res.Ops)
	}
	report(res)

	reg := swarm.NewRedis(rc, swarm.Options{})
	report(runLoad(ctx, "join (registry, no HTTP)", c, dur, pids, func(ctx context.Context, i int) error {
		return reg.Join(ctx, swarm.Peer{ID: peers[i].id, Channel: channel, Addr: peers[i].addr, PublicIP: "127.0.0.1"})
	}))
	for _, p := range peers {
		if err := reg.Have(ctx, channel, p.id, digests); err != nil {
			return fmt.Errorf("registry have: %w", err)
		}
	}
	holders.Store(0)
	res = runLoad(ctx, "lookup (registry, no HTTP)", c, dur, pids, func(ctx context.Context, i int) error {
		hs, _, err := reg.Lookup(ctx, channel, digests[i%len(digests)], swarm.Peer{ID: peers[i].id, Channel: channel, PublicIP: "127.0.0.1"},
			swarm.LookupQuery{Limit: 10})
		if err == nil {
			holders.Add(int64(len(hs)))
		}
		return err
	})
	if res.Ops > 0 {
		res.HoldersMean = float64(holders.Load()) / float64(res.Ops)
	}
	report(res)
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
