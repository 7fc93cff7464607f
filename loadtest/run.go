package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/internal/memnet"
	"github.com/rawflow/rawflow/loadtest/simplayer"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// viewer is one simulated viewer: a player and, unless direct, its proxy.
type viewer struct {
	direct bool
	slow   bool
	node   *peerassist.Node // nil when direct
	player *simplayer.Player
	stop   context.CancelFunc
	done   chan struct{}
	final  *peerassist.Status // the proxy's counters when it left
	left   *simplayer.Result  // the player's figures when it left (its clock stops there)
}

// bench is one benchmark under way.
type bench struct {
	cfg Config

	mu       sync.Mutex // guards the following fields
	viewers  []*viewer
	segments map[string]bool // distinct segment names played
	dirs     map[string]bool // distinct media playlist paths they came from
	// hidden is the media the proxies hide from their players (the gateway's latency
	// mode): assisted players are that much further behind live than their playlist says.
	hidden     time.Duration
	churned    int
	cpuAtStart time.Duration // the process's CPU time when the run started
	wg         sync.WaitGroup
}

// Run runs one benchmark for cfg.Duration and returns what it measured; an error when the
// gateway has no playlist for the channel within 30 s, a proxy cannot be started, or ctx
// ends first. Every proxy and player it started has stopped when it returns.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	b := &bench{cfg: cfg, segments: map[string]bool{}, dirs: map[string]bool{}, cpuAtStart: cpuTime()}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		b.wg.Wait()
	}()
	probe := b.gatewayClient(2 * time.Second)
	err := waitPlaylist(ctx, probe, cfg.GatewayURL+"/live/"+cfg.Channel+"/index.m3u8")
	if err == nil {
		probe.Timeout = 5 * time.Second
		b.hidden = hiddenMedia(ctx, probe, cfg.GatewayURL+"/live/"+cfg.Channel+"/index.m3u8?"+swarm.PeerPlaylistQuery)
	}
	probe.CloseIdleConnections() // a transport of its own: its connections end here
	if err != nil {
		return Report{}, err
	}
	start := time.Now()
	end := start.Add(cfg.Duration)
	if err := b.joinAll(ctx); err != nil {
		return Report{}, err
	}
	// Churn events are spread evenly from the end of the ramp to 20 s (at most a quarter of
	// the run) before its end.
	churns := int(cfg.Churn*float64(cfg.Viewers) + 0.5)
	churnFrom := time.Now()
	churnEvery := end.Add(-min(20*time.Second, cfg.Duration/4)).Sub(churnFrom) / time.Duration(churns+1)
	next := churnFrom.Add(churnEvery)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastProgress := time.Now()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return Report{}, ctx.Err()
		case <-tick.C:
		}
		if churns > 0 && !time.Now().Before(next) {
			if err := b.replaceOne(ctx); err != nil {
				return Report{}, err
			}
			churns--
			next = next.Add(churnEvery)
		}
		if cfg.Progress != nil && time.Since(lastProgress) >= ProgressEvery {
			lastProgress = time.Now()
			cfg.Progress(b.report(time.Since(start)))
		}
	}
	return b.report(time.Since(start)), nil
}

// joinAll starts every viewer, one every Ramp/(Viewers+Direct): the direct ones spread
// evenly among the assisted ones, a random Slow share of which upload slowly.
func (b *bench) joinAll(ctx context.Context) error {
	cfg := b.cfg
	total := cfg.Viewers + cfg.Direct
	joinEvery := cfg.Ramp / time.Duration(max(1, total))
	direct := make([]bool, total)
	for j := range cfg.Direct {
		direct[j*total/cfg.Direct] = true
	}
	slow := map[int]bool{} // by assisted viewer index
	for _, k := range rand.Perm(cfg.Viewers)[:int(cfg.Slow*float64(cfg.Viewers)+0.5)] {
		slow[k] = true
	}
	assisted := 0
	for i := range total {
		isSlow := !direct[i] && slow[assisted]
		if !direct[i] {
			assisted++
		}
		if err := b.join(ctx, direct[i], isSlow, i); err != nil {
			return err
		}
		if !sleepCtx(ctx, joinEvery) {
			return ctx.Err()
		}
	}
	return nil
}

// join starts a viewer: a proxy (unless direct) and its player.
func (b *bench) join(ctx context.Context, direct, slow bool, n int) error {
	v := &viewer{direct: direct, slow: slow, done: make(chan struct{})}
	url := b.cfg.GatewayURL
	vctx, stop := context.WithCancel(ctx)
	v.stop = stop
	var client *http.Client // the player's
	if !direct {
		pcfg := peerassist.Config{GatewayURL: b.cfg.GatewayURL, Group: b.cfg.Group, PeerTransport: b.cfg.PeerTransport, NoPortMapping: !b.cfg.PortMapping,
			GatewayRoots: b.cfg.GatewayRoots, Logger: b.cfg.Logger.With("viewer", n)}
		if slow {
			pcfg.UploadLimit = b.cfg.SlowRate
		}
		// The player reaches its proxy in memory, as over its own machine's loopback: this
		// machine's loopback TCP would cost the benchmark a fifth of its CPU (memnet).
		player := memnet.Listen()
		node, err := peerassist.ListenPlayer(vctx, player, net.JoinHostPort(b.cfg.PeerHost, "0"), pcfg)
		if err != nil {
			stop()
			return err
		}
		v.node, url = node, node.URL
		b.wg.Go(func() { _ = node.Run(vctx) })
		client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2, DialContext: player.Dial}}
	} else {
		client = b.gatewayClient(30 * time.Second)
	}
	variant := 0
	if len(b.cfg.Variants) > 0 {
		variant = b.cfg.Variants[n%len(b.cfg.Variants)]
	}
	v.player = simplayer.New(simplayer.Config{
		URL: url + "/live/" + b.cfg.Channel + "/index.m3u8", Variant: variant, CMCD: b.cfg.CMCD,
		Client:    client,
		OnSegment: func(uri string, _ []byte) { b.played(uri) },
	})
	b.wg.Go(func() {
		defer close(v.done)
		defer client.CloseIdleConnections() // its transport's own: none outlives the player
		_ = v.player.Run(vctx)
	})
	b.mu.Lock()
	b.viewers = append(b.viewers, v)
	b.mu.Unlock()
	return nil
}

// played records a segment a player downloaded, by name (not host: the same segment
// through any proxy is one segment).
func (b *bench) played(uri string) {
	uri, _, _ = strings.Cut(uri, "?")
	i := strings.LastIndexByte(uri, '/')
	dir := uri[:i+1]
	if j := strings.Index(dir, "/live/"); j >= 0 { // the path, whichever proxy served it
		dir = dir[j:]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.segments) < 1<<20 {
		b.segments[uri[i+1:]] = true
		b.dirs[dir] = true
	}
}

// replaceOne makes a random assisted viewer leave (every other time abruptly: its
// servers close their connections mid-transfer) and a new one join.
func (b *bench) replaceOne(ctx context.Context) error {
	b.mu.Lock()
	var live []*viewer
	for _, v := range b.viewers {
		if !v.direct && v.final == nil {
			live = append(live, v)
		}
	}
	if len(live) == 0 {
		b.mu.Unlock()
		return nil
	}
	v := live[rand.N(len(live))]
	b.churned++
	abrupt := b.churned%2 == 1
	n := len(b.viewers)
	b.mu.Unlock()
	res := v.player.Result()
	st := v.node.Proxy.Status()
	if abrupt {
		v.node.Kill()
	}
	v.stop()
	<-v.done
	b.mu.Lock()
	v.final, v.left = &st, &res
	b.mu.Unlock()
	return b.join(ctx, false, v.slow, n)
}

// gatewayClient returns a client for requests to the gateway, within timeout, that trusts
// the configured roots; each call has a transport of its own (a direct player's connections
// are its own, as a browser's would be).
func (b *bench) gatewayClient(timeout time.Duration) *http.Client {
	t := &http.Transport{MaxIdleConnsPerHost: 2, ForceAttemptHTTP2: true}
	if b.cfg.GatewayRoots != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: b.cfg.GatewayRoots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: t}
}

// waitPlaylist waits until url answers 200 (the gateway has the stream), at most 30 s; a
// gateway certificate that does not verify is an error at once.
func waitPlaylist(ctx context.Context, client *http.Client, url string) error {
	for range 300 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if cv := (*tls.CertificateVerificationError)(nil); errors.As(err, &cv) {
			return fmt.Errorf("the gateway's certificate does not verify (a private CA: --gateway-ca): %w", err)
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s: no playlist after 30 s", url)
}

// hiddenMedia returns how much media proxies hide from their players, from the HOLD-BACK of
// the gateway's playlist at url (0 when it has none, e.g. a multivariant playlist).
func hiddenMedia(ctx context.Context, client *http.Client, url string) time.Duration {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, playlist.MaxPlaylistBytes))
	if err != nil {
		return 0
	}
	w, err := playlist.ParseGateway(body)
	if err != nil {
		return 0
	}
	hold, ok := playlist.HoldBack(w.Header)
	td := time.Duration(w.TargetDuration) * time.Second
	if !ok || td <= 0 {
		return 0
	}
	return max(0, hold-3*td)
}

// sleepCtx waits d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
