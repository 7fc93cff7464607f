package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/loadtest/simplayer"
	"github.com/rawflow/rawflow/peerassist"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// The swarm benchmark: N peer-assist proxies in this process, each played by a simulated
// hls.js-like player (internal/simplayer), plus a few players playing the gateway directly
// as the baseline for join time. Everything talks real HTTP, on 127.0.0.1 unless the
// neighbour ports are bound elsewhere (--peer-host, for proxies in several network
// namespaces: bench/sites.sh).

// benchConfig is one benchmark run.
type benchConfig struct {
	gatewayURL string // base URL of the gateway
	channel    string
	viewers    int
	direct     int // players on the gateway directly, the join-time baseline
	duration   time.Duration
	ramp       time.Duration // viewers join spread over this
	churn      float64       // share of viewers replaced during the run
	slow       float64       // share of viewers whose uploads are capped at slowRate
	slowRate   int64         // bytes per second
	variants   []int         // variant indexes viewers play, round robin (multivariant channels)
	group      string        // locality group of every proxy
	peerHost   string        // IP the neighbour ports listen on and advertise; "" for 127.0.0.1
	cmcd       bool          // players send CMCD
	progress   io.Writer     // a line every progressEvery; nil for none
	log        *slog.Logger
}

const progressEvery = 5 * time.Second

// benchReport is what a run measured. Offload and the per-segment figures are over the
// assisted viewers' proxies, departed ones included.
type benchReport struct {
	Viewers           int     `json:"viewers"`
	Direct            int     `json:"direct_viewers"`
	DurationS         float64 `json:"duration_s"`
	Churned           int     `json:"churned"`
	Slow              int     `json:"slow_uploaders"`
	Offload           float64 `json:"offload"`
	BytesFromPeers    int64   `json:"bytes_from_peers"`
	BytesFromGateway  int64   `json:"bytes_from_gateway"`
	Segments          int     `json:"distinct_segments"`
	Renditions        int     `json:"renditions"` // distinct media playlists segments came from
	GatewayFetchesSeg float64 `json:"gateway_fetches_per_segment"`
	OffloadLimit      float64 `json:"offload_limit"` // 1 − k/N with k = gateway fetches per segment of 1
	Stalls            int     `json:"stalls"`
	StallS            float64 `json:"stall_s"`
	DirectStalls      int     `json:"direct_stalls"`
	DirectStallS      float64 `json:"direct_stall_s"`
	NotStarted        int     `json:"not_started"`
	PlayerErrors      int     `json:"player_errors"`
	JoinP50MS         float64 `json:"join_p50_ms"`
	JoinP95MS         float64 `json:"join_p95_ms"`
	DirectJoinP50MS   float64 `json:"direct_join_p50_ms"`
	DirectJoinP95MS   float64 `json:"direct_join_p95_ms"`
	LatencyS          float64 `json:"latency_s"` // mean behind live, assisted
	DirectLatencyS    float64 `json:"direct_latency_s"`
	TrackerPerViewSeg float64 `json:"tracker_requests_per_viewer_segment"`
	LookupsPerViewSeg float64 `json:"lookups_per_viewer_segment"`
	IntegrityFailures int64   `json:"integrity_failures"`
	NeighbourFailures int64   `json:"neighbour_failures"`
	RangeCompletions  int64   `json:"range_completions"`
	QuietSpells       int     `json:"quiet_spells"`
}

// benchViewer is one simulated viewer: a player and, unless direct, its proxy.
type benchViewer struct {
	direct bool
	slow   bool
	node   *peerNode // nil when direct
	player *simplayer.Player
	stop   context.CancelFunc
	done   chan struct{}
	final  *peerassist.Status // the proxy's counters when it left
	left   *simplayer.Result  // the player's figures when it left (its clock stops there)
}

// bench runs one benchmark.
type bench struct {
	cfg benchConfig

	mu       sync.Mutex // guards the following fields
	viewers  []*benchViewer
	segments map[string]bool // distinct segment names played
	dirs     map[string]bool // distinct media playlist paths they came from
	// hidden is the media the proxies hide from their players (the gateway's latency
	// mode): assisted players are that much further behind live than their playlist says.
	hidden  time.Duration
	churned int
	wg      sync.WaitGroup
}

func runBench(ctx context.Context, cfg benchConfig) (benchReport, error) {
	b := &bench{cfg: cfg, segments: map[string]bool{}, dirs: map[string]bool{}}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		b.wg.Wait()
	}()
	if err := waitPlaylist(ctx, cfg.gatewayURL+"/live/"+cfg.channel+"/index.m3u8"); err != nil {
		return benchReport{}, err
	}
	b.hidden = hiddenMedia(ctx, cfg.gatewayURL+"/live/"+cfg.channel+"/index.m3u8?"+swarm.PeerPlaylistQuery)
	start := time.Now()
	end := start.Add(cfg.duration)
	total := cfg.viewers + cfg.direct
	joinEvery := cfg.ramp / time.Duration(max(1, total))
	direct := make([]bool, total) // direct players spread evenly among the joins
	for j := range cfg.direct {
		direct[j*total/cfg.direct] = true
	}
	slow := map[int]bool{} // which assisted viewers upload slowly
	for _, k := range rand.Perm(cfg.viewers)[:int(cfg.slow*float64(cfg.viewers)+0.5)] {
		slow[k] = true
	}
	assisted := 0
	for i := range total {
		isSlow := !direct[i] && slow[assisted]
		if !direct[i] {
			assisted++
		}
		if err := b.join(ctx, direct[i], isSlow, i); err != nil {
			return benchReport{}, err
		}
		if !sleepCtx(ctx, joinEvery) {
			return benchReport{}, ctx.Err()
		}
	}
	// Churn events are spread evenly from the end of the ramp to 20 s (at most a quarter of
	// the run) before its end.
	churns := int(cfg.churn*float64(cfg.viewers) + 0.5)
	churnFrom := time.Now()
	churnEvery := end.Add(-min(20*time.Second, cfg.duration/4)).Sub(churnFrom) / time.Duration(churns+1)
	next := churnFrom.Add(churnEvery)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastProgress := time.Now()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return benchReport{}, ctx.Err()
		case <-tick.C:
		}
		if churns > 0 && !time.Now().Before(next) {
			if err := b.replaceOne(ctx); err != nil {
				return benchReport{}, err
			}
			churns--
			next = next.Add(churnEvery)
		}
		if cfg.progress != nil && time.Since(lastProgress) >= progressEvery {
			lastProgress = time.Now()
			r := b.report(time.Since(start))
			fmt.Fprintf(cfg.progress, "[%4.0fs] viewers %d  offload %.3f  gateway fetches/segment %.2f  stalls %d (%.1fs)  join p50 %.0f ms (direct %.0f ms)  behind live %.1fs\n",
				time.Since(start).Seconds(), r.Viewers, r.Offload, r.GatewayFetchesSeg, r.Stalls, r.StallS, r.JoinP50MS, r.DirectJoinP50MS, r.LatencyS)
		}
	}
	return b.report(time.Since(start)), nil
}

// join starts a viewer: a proxy (unless direct) and its player.
func (b *bench) join(ctx context.Context, direct, slow bool, n int) error {
	v := &benchViewer{direct: direct, slow: slow, done: make(chan struct{})}
	url := b.cfg.gatewayURL
	vctx, stop := context.WithCancel(ctx)
	v.stop = stop
	if !direct {
		pcfg := peerassist.Config{GatewayURL: b.cfg.gatewayURL, Group: b.cfg.group,
			Logger: b.cfg.log.With("viewer", n)}
		if slow {
			pcfg.UploadLimit = b.cfg.slowRate
		}
		host := b.cfg.peerHost
		if host == "" {
			host = "127.0.0.1"
		}
		node, err := newPeerNode("127.0.0.1:0", net.JoinHostPort(host, "0"), pcfg)
		if err != nil {
			stop()
			return err
		}
		v.node, url = node, node.url
		b.wg.Go(func() { _ = node.run(vctx) })
	}
	variant := 0
	if len(b.cfg.variants) > 0 {
		variant = b.cfg.variants[n%len(b.cfg.variants)]
	}
	v.player = simplayer.New(simplayer.Config{
		URL: url + "/live/" + b.cfg.channel + "/index.m3u8", Variant: variant, CMCD: b.cfg.cmcd,
		Client:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}},
		OnSegment: func(uri string, _ []byte) { b.played(uri) },
	})
	b.wg.Go(func() {
		defer close(v.done)
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
	var live []*benchViewer
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
	st := v.node.proxy.Status()
	if abrupt {
		v.node.kill()
	}
	v.stop()
	<-v.done
	b.mu.Lock()
	v.final, v.left = &st, &res
	b.mu.Unlock()
	return b.join(ctx, false, v.slow, n)
}

// report sums what every viewer measured so far.
func (b *bench) report(elapsed time.Duration) benchReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := benchReport{DurationS: elapsed.Seconds(), Churned: b.churned, Segments: len(b.segments), Renditions: len(b.dirs)}
	var joins, directJoins []time.Duration
	var latency, directLatency time.Duration
	var segmentsFromGateway, tracker, lookups, played int64
	for _, v := range b.viewers {
		res := v.player.Result()
		if v.left != nil {
			res = *v.left
		}
		r.PlayerErrors += res.Errors
		if !res.Started {
			r.NotStarted++
		}
		if v.direct {
			r.Direct++
			r.DirectStalls += res.Stalls
			r.DirectStallS += res.StallTime.Seconds()
			if res.Started {
				directJoins = append(directJoins, res.Startup)
				directLatency += res.Latency
			}
			continue
		}
		if v.final == nil {
			r.Viewers++
		}
		if v.slow {
			r.Slow++
		}
		r.Stalls += res.Stalls
		r.StallS += res.StallTime.Seconds()
		played += int64(res.Segments)
		if res.Started {
			joins = append(joins, res.Startup)
			latency += res.Latency
		}
		st := v.final
		if st == nil {
			s := v.node.proxy.Status()
			st = &s
		}
		c := st.Totals
		r.BytesFromPeers += c.BytesFromPeers
		r.BytesFromGateway += c.BytesFromGateway
		segmentsFromGateway += c.SegmentsFromGateway
		r.IntegrityFailures += c.IntegrityFailures
		r.NeighbourFailures += c.NeighbourFailures
		r.QuietSpells += st.QuietSpells
		for _, ch := range st.Channels {
			tracker += ch.TrackerRequests
			lookups += ch.Lookups
			r.RangeCompletions += ch.RangeCompletions
		}
	}
	if total := r.BytesFromPeers + r.BytesFromGateway; total > 0 {
		r.Offload = float64(r.BytesFromPeers) / float64(total)
	}
	if r.Segments > 0 {
		r.GatewayFetchesSeg = float64(segmentsFromGateway) / float64(r.Segments)
	}
	if r.Viewers > 0 {
		r.OffloadLimit = 1 - 1/float64(r.Viewers)
	}
	if played > 0 {
		r.TrackerPerViewSeg = float64(tracker) / float64(played)
		r.LookupsPerViewSeg = float64(lookups) / float64(played)
	}
	r.JoinP50MS, r.JoinP95MS = percentileMS(joins, 0.5), percentileMS(joins, 0.95)
	r.DirectJoinP50MS, r.DirectJoinP95MS = percentileMS(directJoins, 0.5), percentileMS(directJoins, 0.95)
	if n := len(joins); n > 0 {
		r.LatencyS = (latency/time.Duration(n) + b.hidden).Seconds()
	}
	if n := len(directJoins); n > 0 {
		r.DirectLatencyS = (directLatency / time.Duration(n)).Seconds()
	}
	return r
}

// percentileMS returns the p-quantile of ds in milliseconds (nearest rank); 0 when empty.
func percentileMS(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, max(0, int(p*float64(len(s))+0.5)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

// waitPlaylist waits until url answers 200 (the gateway has the stream), at most 30 s.
func waitPlaylist(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for range 300 {
		if resp, err := client.Get(url); err == nil {
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
func hiddenMedia(ctx context.Context, url string) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
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
