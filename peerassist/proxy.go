package peerassist

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/rawflow/rawflow/internal/flight"
	"github.com/rawflow/rawflow/internal/portmap"
	"github.com/rawflow/rawflow/peerlink"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// maxChannels bounds the channels one proxy follows.
const maxChannels = 64

// ErrTooManyChannels reports that the proxy already follows maxChannels channels.
var ErrTooManyChannels = errors.New("too many channels")

// Proxy is the peer-assist proxy for one viewer machine. Players play its player port;
// other proxies fetch from its neighbour port.
type Proxy struct {
	cfg         Config
	log         *slog.Logger
	gateway     *url.URL
	gwHTTP      *http.Client
	peerHTTP    *http.Client
	link        *peerlink.Link // WebRTC links to neighbours; nil with PeerTransport direct
	routes      *routes        // how each source is reached (links.go)
	tracker     *swarm.Client
	cache       *cache
	flights     flight.Group[playlist.Digest, *segment] // the fetches under way
	neigh       *neighbours
	uplink      uplink
	gwEstimate  gatewayEstimate
	gwHealth    gatewayHealth // playlist requests fall back on copies while the gateway is down
	origins     *origins      // web origins allowed to read the player port (access.go)
	policy      atomic.Int32  // the neighbour address policy the gateway announced (swarm.AddrPolicy)
	deadlines   deadlines
	uploads     chan struct{}                   // semaphore of MaxUploads
	queued      atomic.Int64                    // uploads waiting for a slot
	dials       atomic.Int64                    // connections opened, to the gateway and to neighbours
	cert        tls.Certificate                 // the neighbour port's (neighbourtls.go)
	certFP      string                          // its fingerprint; "" for a proxy that uploads nothing
	tlsSessions tls.ClientSessionCache          // neighbours' TLS sessions, to resume
	mapping     atomic.Pointer[portmap.Mapping] // the router's forwarding of the neighbour port; nil: none (portmap.go)
	nat         natProbe                        // the NAT's mapping, tested with the gateway's STUN (nattype.go)
	// stalePlaylists counts playlists served from the proxy's copy during a gateway outage,
	// tokenRefused segment requests refused on a signed channel, addrRefused neighbour
	// addresses the policy refused to dial, certRefused gateway requests given up because
	// the gateway's certificate did not verify, neighbourRefused neighbour requests without
	// a swarm credential this proxy accepts.
	stalePlaylists, tokenRefused, addrRefused, certRefused, neighbourRefused atomic.Int64
	upRate                                                                   *rate.Limiter // nil: no upload limit
	wake                                                                     chan struct{} // a member needs its loop started

	metrics http.Handler         // GET /metrics on the player port (metrics.go)
	startup prometheus.Histogram // rawflow_peer_startup_seconds

	newsMu sync.Mutex    // guards news
	news   chan struct{} // closed, and replaced, when a member learns of a segment

	mu      sync.Mutex // guards members
	members map[string]*member
}

// New builds a proxy from cfg.
func New(cfg Config) (*Proxy, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	gw, _ := url.Parse(cfg.GatewayURL) // checked by Validate
	var upRate *rate.Limiter
	if cfg.UploadLimit > 0 {
		upRate = rate.NewLimiter(rate.Limit(cfg.UploadLimit), uploadChunk)
	}
	p := &Proxy{
		upRate:      upRate,
		cfg:         cfg,
		log:         cfg.Logger.With("component", "peerassist"),
		gateway:     gw,
		cache:       newCache(cfg.CacheBytes),
		neigh:       newNeighbours(),
		uploads:     make(chan struct{}, cfg.MaxUploads),
		wake:        make(chan struct{}, 1),
		nat:         newNATProbe(),
		members:     map[string]*member{},
		news:        make(chan struct{}),
		tlsSessions: tls.NewLRUClientSessionCache(tlsSessions),
		origins:     newOrigins(cfg.AllowOrigins, gw),
	}
	if !cfg.NoUpload {
		var err error
		if p.cert, p.certFP, err = newNeighbourCert(); err != nil {
			return nil, fmt.Errorf("neighbour certificate: %w", err)
		}
	}
	gwTransport := p.transport(cfg.GatewayTimeout, gatewayConns)
	gwTransport.TLSClientConfig = &tls.Config{RootCAs: cfg.GatewayRoots, MinVersion: tls.VersionTLS12}
	p.gwHTTP = &http.Client{Transport: certGuard{rt: gwTransport, p: p}}
	if cfg.PeerTransport != TransportDirect {
		var err error
		if p.link, err = peerlink.New(peerlink.Config{Send: p.signal, Logger: p.log, IncludeLoopback: loopbackHost(gw.Hostname())}); err != nil {
			return nil, fmt.Errorf("peer links: %w", err)
		}
	}
	p.routes = newRoutes(p, p.link, cfg.PeerTransport)
	peerTransport := p.transport(cfg.NeighbourBudget, neighbourConns)
	// At most neighbourConns per neighbour, dialling included: a request that finds none
	// idle waits for one rather than dial another. Without it, while a TLS handshake is
	// under way every further request dials too (the transport's dials outlive their
	// requests), and a thousand viewers joining at once opened 40-60 connections each,
	// whose handshakes and slots swamped their neighbours.
	peerTransport.MaxConnsPerHost = neighbourConns
	dialTCP := peerTransport.DialContext
	peerTransport.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return p.routes.dial(ctx, dialTCP, host)
	}
	p.peerHTTP = &http.Client{Timeout: cfg.NeighbourBudget, Transport: peerTransport,
		// Never follow a neighbour's redirect: it could point proxies anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	p.tracker = swarm.NewClient(gw, p.gwHTTP, 2*time.Second)
	p.newMetrics()
	return p, nil
}

// Connection reuse. The gateway's connections carry the event stream, reports, playlists
// and segments: a few kept open; a neighbour's are the plan's, the same from one segment to
// the next: each kept open, at most neighbourConns at once (the transfers of one stripe
// never need more). Every connection opened is counted (Status.Connections).
const (
	gatewayConns   = 8
	neighbourConns = 4
)

// transport is an HTTP transport that keeps up to conns idle connections per host, bounds
// the wait for a response header to header (body reads are bounded by stall timers and the
// caller's context) and counts the connections it opens.
func (p *Proxy) transport(header time.Duration, conns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = header
	t.MaxIdleConnsPerHost = conns
	dial := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			p.dials.Add(1)
		}
		return c, err
	}
	return t
}

// Run keeps the proxy's swarm memberships alive until ctx ends; then it leaves every swarm.
func (p *Proxy) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if p.link != nil {
		defer p.link.Close() // after every member has left (deferred calls run last first)
	}
	wg.Go(func() { p.routes.run(ctx) })
	if p.link != nil {
		wg.Go(func() { p.nat.run(ctx, p.cfg.Now, p.resubscribeAll) })
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
		p.mu.Lock()
		for _, m := range p.members {
			m.mu.Lock()
			start := !m.running
			m.running = true
			m.mu.Unlock()
			if start {
				wg.Go(func() { m.run(ctx, p) })
			}
		}
		p.mu.Unlock()
	}
}

// resubscribeAll makes every member's stream subscribe again, at once (what it subscribes
// with changed).
func (p *Proxy) resubscribeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.members {
		m.signal()
	}
}

// member returns the channel's membership, creating it if needed (nil beyond maxChannels).
func (p *Proxy) member(channel string) *member {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.members[channel]
	if m == nil && len(p.members) < maxChannels {
		m = newMember(channel)
		m.learnt = p.learnt
		p.members[channel] = m
	}
	return m
}

// activate records a player's request on m and wakes Run to start m's loop if it is not
// running.
func (p *Proxy) activate(m *member) {
	m.touch(p.cfg.Now())
	m.mu.Lock()
	idle := !m.running
	m.mu.Unlock()
	if idle {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// fetch returns the verified segment: from the cache, or by joining or starting the one
// shared fetch of it (neighbours, then the gateway), which must land by at, when the
// player needs it. A caller with an earlier deadline brings the shared fetch's forward.
// The caller's ctx bounds only its own wait.
func (p *Proxy) fetch(ctx context.Context, m *member, info segInfo, at time.Time) (*segment, error) {
	if s := p.cache.get(info.digest); s != nil {
		m.stats.cacheHits.Add(1)
		return s, nil
	}
	dl := p.deadlines.of(info.digest, at, p.cfg.Now())
	timeout := p.cfg.NeighbourBudget + p.cfg.GatewayTimeout + 2*time.Second
	f := p.flights.Do(ctx, info.digest, timeout, func(fctx context.Context) (*segment, error) {
		defer p.deadlines.forget(info.digest, dl)
		return p.load(fctx, m, info, dl) // caches what it gets before the flight ends
	})
	return f.Wait(ctx)
}

// load is the ladder below the cache: the swarm until the gateway must take over to land
// by the deadline, then the gateway (completing any partial neighbour transfer). A gateway
// whose uplink is saturated may hold back a member's fetch of a segment its cell's root is
// getting (errHeld): then the swarm again, until the player needs the segment within
// swarm.UrgentNeed (leaving the gateway its turn within the fetch's bound), and the
// gateway once more, asking plainly (never refused).
func (p *Proxy) load(ctx context.Context, m *member, info segInfo, dl *deadline) (*segment, error) {
	// Re-check the cache: a flight for this digest may have finished between the caller's
	// miss and this flight's start.
	if s := p.cache.get(info.digest); s != nil {
		return s, nil
	}
	sctx, stop, urgent := p.swarmRung(ctx, dl, info.size)
	s, part, ask := p.fromSwarm(sctx, m, info, urgent)
	stop()
	if s != nil {
		p.keep(s)
		return s, nil
	}
	ask.dl = dl
	s, err := p.fromGateway(ctx, m, info, part, ask)
	if errors.Is(err, errHeld) {
		m.stats.held.Add(1)
		// The swarm again, until the player needs the segment within UrgentNeed, and never
		// so long that the fetch's own bound leaves the gateway no time for its turn.
		hctx, cancelDeadline := dl.before(ctx, swarm.UrgentNeed, p.cfg.Now)
		cancel := cancelDeadline
		if end, ok := ctx.Deadline(); ok {
			var cancelBound context.CancelFunc
			hctx, cancelBound = context.WithDeadline(hctx, end.Add(-p.cfg.GatewayTimeout))
			cancel = func() { cancelBound(); cancelDeadline() }
		}
		var more partial
		s, more, _ = p.fromNeighbours(hctx, m, ask.sources, info, p.cfg.NeighbourStall)
		if s == nil {
			<-hctx.Done() // sources that failed at once: the swarm's root may still deliver to them
		}
		cancel()
		if s != nil {
			p.keep(s)
			return s, nil
		}
		if len(more.data) > len(part.data) {
			part = more
		}
		s, err = p.fromGateway(ctx, m, info, part, gatewayAsk{})
	}
	if err != nil {
		return nil, err
	}
	p.keep(s)
	return s, nil
}

// swarmRung returns the context of a fetch's swarm rung: it ends when the gateway must take
// over to land a segment of size bytes by the deadline (following the deadline when it is
// brought forward), after NeighbourBudget at most. A fetch with too little time left is
// urgent: a short try of neighbours that have the segment, nothing more.
func (p *Proxy) swarmRung(ctx context.Context, dl *deadline, size int64) (context.Context, context.CancelFunc, bool) {
	reserve := p.gwEstimate.reserve(size)
	if at, _ := dl.get(); at.Sub(p.cfg.Now()) < reserve+minSwarmBudget {
		urgent, cancel := context.WithTimeout(ctx, urgentSwarmBudget)
		return urgent, cancel, true
	}
	ctx, cancelBudget := context.WithTimeout(ctx, p.cfg.NeighbourBudget)
	ctx, cancel := dl.before(ctx, reserve, p.cfg.Now)
	return ctx, func() { cancel(); cancelBudget() }, false
}

// Budgets of the swarm rung.
const (
	// minSwarmBudget: with less time than this before the gateway must take over, a fetch
	// is urgent.
	minSwarmBudget = 300 * time.Millisecond
	// urgentSwarmBudget bounds an urgent fetch's try of the swarm: a source that has the
	// segment answers at once.
	urgentSwarmBudget = 500 * time.Millisecond
	// planWait bounds how long a fetch waits for the plan of its rendition (the player's
	// first playlist request opened the stream that brings it).
	planWait = 500 * time.Millisecond
	// urgentStall ends an urgent fetch's neighbour transfer that delivers no byte for this
	// long: a slow neighbour costs a start little; the gateway completes what it sent.
	urgentStall = 150 * time.Millisecond
)

// fromSwarm gets the segment through the member's plan: nothing when the proxy is the root
// of the segment's stripe (it fetches from the gateway for its cell; a site's root tries
// its feeders first) or has no plan; else from the stripe's sources in order. It returns
// the longest partial neighbour transfer too, for the gateway to complete, and how to
// present the fetch to the gateway.
func (p *Proxy) fromSwarm(ctx context.Context, m *member, info segInfo, urgent bool) (*segment, partial, gatewayAsk) {
	plan, ok := m.plan(ctx, info.rendition, planWait)
	if !ok {
		return nil, partial{}, gatewayAsk{}
	}
	sp := plan.Stripes[swarm.StripeOf(info.seq)]
	stall := p.cfg.NeighbourStall
	if urgent {
		stall = min(stall, urgentStall)
	}
	if sp.Root {
		// The root of a site's cell, fed by its group's peers that neighbours can dial
		// (swarm.Feeders), tries them first; a fetch the gateway makes counts as a root's.
		var s *segment
		var part partial
		if len(sp.Sources) > 0 {
			s, part, _ = p.fromNeighbours(ctx, m, sp.Sources, info, stall)
		}
		if s == nil {
			m.stats.roots.Add(1)
		}
		return s, part, gatewayAsk{role: swarm.FetchRoot, group: p.cfg.Group}
	}
	ask := gatewayAsk{role: swarm.FetchMember, group: p.cfg.Group, sources: sp.Sources}
	s, part, cause := p.fromNeighbours(ctx, m, sp.Sources, info, stall)
	if s == nil {
		m.stats.misses[cause].Add(1)
	}
	return s, part, ask
}

// poll fetches the playlists of the renditions a player plays, so that new segments are
// noticed (and prefetched) even while the player is not asking.
func (p *Proxy) poll(ctx context.Context, m *member) {
	now := p.cfg.Now()
	playing, td := m.playing(now)
	if !playing {
		return
	}
	for _, r := range m.playingRenditions(now, max(10*time.Second, 3*td)) {
		gctx, cancel := context.WithTimeout(ctx, p.cfg.GatewayTimeout)
		body, err := p.gatewayGet(gctx, m.playlistPath(r, m.tokens.own(now)), playlist.MaxPlaylistBytes)
		cancel()
		if err != nil {
			continue
		}
		if w, err := playlist.ParseGateway(body); err == nil {
			m.learn(r, w, now, false)
		}
	}
}

// prefetch fetches a new segment before the player asks for it, with the deadline the
// player's playhead gives it (or two target durations when nobody plays it yet), through
// the member's plan: the root of the segment's stripe fetches it from the gateway, every
// other member from its place in the stripe's tree.
func (p *Proxy) prefetch(ctx context.Context, m *member, info segInfo) {
	now := p.cfg.Now()
	playing, td := m.playing(now)
	if !playing || p.cfg.noPrefetch {
		return
	}
	at, ok := m.head(info.rendition).deadline(info.seq, now)
	if !ok {
		at = now.Add(2 * td)
	}
	_, _ = p.fetch(ctx, m, info, at)
}

// keep caches a verified segment.
func (p *Proxy) keep(s *segment) { p.cache.add(s) }

// advertising reports whether the proxy offers uploads to its neighbours now: not a
// leech, and its uplink keeps up (see uplink).
func (p *Proxy) advertising() bool {
	return !p.cfg.NoUpload && p.uplink.advertising(p.cfg.Now())
}

// Status returns the proxy's counters.
func (p *Proxy) Status() Status {
	st := Status{Channels: map[string]ChannelStatus{}}
	st.CacheBytes, st.CacheSegments = p.cache.size()
	st.Advertising, st.QuietSpells = p.advertising(), p.uplink.quiets()
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, m := range p.members {
		c := m.stats.snapshot()
		st.Totals.Add(c)
		st.Channels[name] = ChannelStatus{Counters: c, CacheHits: m.stats.cacheHits.Load(), PeerID: m.peerID(),
			Offload: c.Offload(), TrackerRequests: m.stats.trackerRequests.Load(), TrackerRefused: m.stats.trackerRefused.Load(),
			Roots: m.stats.roots.Load(), RangeCompletions: m.stats.rangeCompletions.Load(),
			GatewayResumes: m.stats.gatewayResumes.Load(), Held: m.stats.held.Load(), SwarmMisses: m.stats.missCounts()}
	}
	st.Connections = p.dials.Load()
	st.StalePlaylists, st.TokenRefused, st.AddrRefused = p.stalePlaylists.Load(), p.tokenRefused.Load(), p.addrRefused.Load()
	st.NeighbourRefused = p.neighbourRefused.Load()
	if p.link != nil {
		ls := p.link.Stats()
		st.Links = &ls
	}
	st.GatewayCertRefused = p.certRefused.Load()
	if m := p.mapping.Load(); m != nil {
		st.PortMapping = &PortMapping{External: m.External.String(), Method: m.Method}
	}
	if p.link != nil {
		st.NAT = p.nat.get()
	}
	return st
}

// learnt wakes whoever waits for a segment to become known.
func (p *Proxy) learnt() {
	p.newsMu.Lock()
	defer p.newsMu.Unlock()
	close(p.news)
	p.news = make(chan struct{})
}

// awaitKnown returns the member of channel and what the gateway said to it of the segment
// with digest d, waiting until ctx ends for it to learn of it: a neighbour may ask for a
// segment a moment before the event that announces it reaches this proxy. Only that
// channel's: a neighbour admitted to one channel makes this proxy fetch nothing of another.
func (p *Proxy) awaitKnown(ctx context.Context, channel string, d playlist.Digest) (*member, segInfo, bool) {
	p.mu.Lock()
	m := p.members[channel]
	p.mu.Unlock()
	if m == nil {
		return nil, segInfo{}, false
	}
	for {
		p.newsMu.Lock()
		news := p.news
		p.newsMu.Unlock()
		if info, ok := m.knownDigest(d); ok {
			return m, info, true
		}
		select {
		case <-news:
		case <-ctx.Done():
			return nil, segInfo{}, false
		}
	}
}
