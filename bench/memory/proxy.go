package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/peerassist"
)

// proxyRun is one proxy measured in phase 3.
type proxyRun struct {
	CacheSize  string `json:"cache_size"`
	CacheBytes int64  `json:"cache_bytes_configured"`
	Error      string `json:"error,omitempty"`
	// Refused is the proxy's own error when it refuses the cache size at start.
	Refused string  `json:"refused,omitempty"`
	IdleRSS rssStat `json:"rss_idle"`
	RSS     rssStat `json:"rss"`
	// What the proxy said (/api/v1/status and /metrics) when RSS was read.
	FetchedFromGateway int64   `json:"fetched_from_gateway_bytes"`
	CacheHeld          int64   `json:"cache_held_bytes"`
	CacheSegments      int     `json:"cache_segments"`
	CacheMetric        float64 `json:"cache_bytes_metric"`
	PlayerSegments     int64   `json:"player_segments"`
	PlayerBytes        int64   `json:"player_bytes"`
	PlayerErrors       int64   `json:"player_errors"`
	FirstPlayerError   string  `json:"first_player_error,omitempty"`
	PlaySeconds        float64 `json:"play_s"`
	RatioRSSCache      float64 `json:"rss_over_cache"`      // VmRSS max / configured cache
	RatioRSSHeld       float64 `json:"rss_over_cache_held"` // VmRSS max / bytes the cache held
	GC                 gcTrace `json:"gc"`
}

// proxyPhase is phase 3: one gateway with one channel whose segments come every
// --proxy-segment-interval (4 a second by default, so a 64 MiB cache turns over 1.5 times
// in about 25 s rather than 100 s); for each cache size a proxy child, played through by
// an in-process player until the proxy has fetched 1.5 × its cache from the gateway.
func (b *bench) proxyPhase(ctx context.Context, progress func(string, ...any)) error {
	g, err := b.startGateway(ctx, "gateway-proxy", []string{"c0=" + b.origin.url("proxy-c0", b.cfg.segmentSize, b.cfg.proxyInterval)})
	if err != nil {
		return err
	}
	defer g.c.stop(3 * time.Second)
	if _, err := b.waitWindows(ctx, g, 1, b.cfg.segmentSize, b.cfg.proxyInterval); err != nil {
		return err
	}
	var errs []error
	for _, size := range b.cfg.cacheSizes {
		progress("proxy with --cache-size %s", size)
		r, err := b.measureProxy(ctx, g, size)
		b.rep.Proxy = append(b.rep.Proxy, r)
		if r.Refused != "" {
			progress("  refused: %s", r.Refused)
			continue
		}
		if err != nil {
			progress("  %v", err)
			errs = append(errs, fmt.Errorf("cache %s: %w", size, err))
			continue
		}
		progress("  RSS %s with %s cached (fetched %s): %.2f × the cache size", mib(r.RSS.VMRSSMax), mib(r.CacheHeld),
			mib(r.FetchedFromGateway), r.RatioRSSCache)
	}
	return errors.Join(errs...)
}

func (b *bench) measureProxy(ctx context.Context, g *gw, size string) (proxyRun, error) {
	r := proxyRun{CacheSize: size}
	r.CacheBytes, _ = parseSize(size)
	label := "peer-" + size
	var (
		p    *child
		base string
		err  error
	)
	for range 3 { // another process may take a free port first
		pp, err1 := freePort(ctx)
		np, err2 := freePort(ctx)
		if err = errors.Join(err1, err2); err != nil {
			return r, err
		}
		base = "http://127.0.0.1:" + strconv.Itoa(pp)
		p, err = startChild(ctx, label, filepath.Join(b.logDir, label+".log"), b.env, b.bin, "peer", "--gateway", g.base,
			"--listen", "127.0.0.1:"+strconv.Itoa(pp), "--peer-listen", "127.0.0.1:"+strconv.Itoa(np),
			"--cache-size", size, "--log-level", "warn")
		if err != nil {
			return r, err
		}
		if err = b.waitProxy(ctx, p, base); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		p.stop(time.Second)
	}
	if err != nil {
		if p != nil && p.exited() {
			// The proxy refused its configuration: a result, not a failure of the bench.
			r.Refused = lastLine(p.logTail(2000))
			return r, nil
		}
		r.Error = err.Error()
		return r, err
	}
	defer p.stop(3 * time.Second)
	if r.IdleRSS, err = sampleMem(ctx, p.pid(), 2, 500*time.Millisecond); err != nil {
		return r, err
	}

	// Play until the proxy has fetched 1.5 × its cache from the gateway; bounded by three
	// times what the origin's pace needs, plus a minute.
	target := r.CacheBytes * 3 / 2
	perSecond := float64(b.cfg.segmentSize) / b.cfg.proxyInterval.Seconds()
	limit := time.Duration(float64(target)/perSecond*3*float64(time.Second)) + time.Minute
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	pl := &player{client: newHTTPClient(10*time.Second, 4), base: base, channel: "c0"}
	done := make(chan struct{})
	go func() { defer close(done); pl.run(pctx) }()
	stopPlayer := func() { cancel(); <-done }
	defer stopPlayer()
	start := time.Now()
	var st peerassist.Status
	for {
		if p.exited() {
			return r, fmt.Errorf("proxy exited: %s", p.logTail(800))
		}
		if st, err = b.proxyStatus(pctx, base); err == nil && st.Totals.BytesFromGateway > target {
			break
		}
		if sleep(pctx, time.Second) != nil {
			return r, fmt.Errorf("proxy fetched %d bytes of the %d wanted in %v (player: %d segments, %d errors, %s)",
				st.Totals.BytesFromGateway, target, time.Since(start).Round(time.Second), pl.segments.Load(), pl.errors.Load(), pl.firstError())
		}
	}
	// The player goes on playing while the RSS is read: a steady state, not an idle one.
	if r.RSS, err = sampleMem(pctx, p.pid(), b.cfg.samples, b.cfg.sampleEvery); err != nil {
		return r, err
	}
	r.PlaySeconds = time.Since(start).Seconds()
	if st, err = b.proxyStatus(pctx, base); err != nil {
		return r, err
	}
	r.FetchedFromGateway, r.CacheHeld, r.CacheSegments = st.Totals.BytesFromGateway, st.CacheBytes, st.CacheSegments
	if m, err := scrape(pctx, b.http, base+"/metrics"); err == nil {
		r.CacheMetric = m["rawflow_peer_cache_bytes"]
	}
	stopPlayer()
	r.PlayerSegments, r.PlayerBytes, r.PlayerErrors, r.FirstPlayerError = pl.segments.Load(), pl.bytes.Load(), pl.errors.Load(), pl.firstError()
	r.RatioRSSCache = float64(r.RSS.VMRSSMax) / float64(r.CacheBytes)
	if r.CacheHeld > 0 {
		r.RatioRSSHeld = float64(r.RSS.VMRSSMax) / float64(r.CacheHeld)
	}
	r.GC = lastGC(p.log, 0)
	return r, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// waitProxy waits until the proxy's status endpoint answers, or it exits.
func (b *bench) waitProxy(ctx context.Context, p *child, base string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("proxy exited at start: %s", p.logTail(800))
		}
		if _, err := b.proxyStatus(ctx, base); err == nil {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("proxy not answering after 15s: %s", p.logTail(800))
}

func (b *bench) proxyStatus(ctx context.Context, base string) (peerassist.Status, error) {
	var st peerassist.Status
	body, err := get(ctx, b.http, base+"/api/v1/status", 1<<20)
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(body, &st)
	return st, err
}

// player plays a channel through a proxy the way a simple HLS player does: the playlist
// every second, then every segment it has not fetched yet, in full.
type player struct {
	client   *http.Client
	base     string
	channel  string
	segments atomic.Int64
	bytes    atomic.Int64
	errors   atomic.Int64
	firstErr atomic.Pointer[string]
}

func (pl *player) fail(err error) {
	pl.errors.Add(1)
	s := err.Error()
	pl.firstErr.CompareAndSwap(nil, &s)
}

func (pl *player) firstError() string {
	if s := pl.firstErr.Load(); s != nil {
		return *s
	}
	return ""
}

func (pl *player) run(ctx context.Context) {
	playlistURL, _ := url.Parse(pl.base + "/live/" + pl.channel + "/index.m3u8")
	seen := map[string]bool{}
	var order []string // bounds seen
	for ctx.Err() == nil {
		next := time.Now().Add(time.Second)
		body, err := get(ctx, pl.client, playlistURL.String(), 1<<20)
		if err != nil && ctx.Err() == nil {
			pl.fail(err)
		}
		for _, uri := range segmentURIs(body) {
			if seen[uri] || ctx.Err() != nil {
				continue
			}
			seen[uri], order = true, append(order, uri)
			if len(order) > 256 {
				delete(seen, order[0])
				order = order[1:]
			}
			ref, err := url.Parse(uri)
			if err != nil {
				pl.fail(err)
				continue
			}
			if n, err := pl.fetch(ctx, playlistURL.ResolveReference(ref).String()); err != nil {
				if ctx.Err() == nil {
					pl.fail(err)
				}
			} else {
				pl.segments.Add(1)
				pl.bytes.Add(n)
			}
		}
		_ = sleep(ctx, time.Until(next))
	}
}

func (pl *player) fetch(ctx context.Context, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := pl.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return n, err
}
