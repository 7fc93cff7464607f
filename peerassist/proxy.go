package peerassist

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/rawflow/rawflow/internal/flight"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// maxChannels bounds the channels one proxy follows.
const maxChannels = 64

// ErrTooManyChannels: the proxy already follows maxChannels channels.
var ErrTooManyChannels = errors.New("too many channels")

// Proxy is the peer-assist proxy for one viewer machine. Players play its player port;
// other proxies fetch from its neighbour port.
type Proxy struct {
	cfg      Config
	log      *slog.Logger
	gateway  *url.URL
	gwHTTP   *http.Client
	peerHTTP *http.Client
	tracker  *swarm.Client
	cache    *cache
	flights  flight.Group[playlist.Digest, *segment] // the fetches under way
	health   *health
	uploads  chan struct{} // semaphore of MaxUploads
	upRate   *rate.Limiter // nil: no upload limit
	wake     chan struct{} // a member needs its loop started

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
	return &Proxy{
		upRate:   upRate,
		cfg:      cfg,
		log:      cfg.Logger.With("component", "peerassist"),
		gateway:  gw,
		gwHTTP:   &http.Client{Timeout: cfg.GatewayTimeout},
		peerHTTP: &http.Client{Timeout: cfg.NeighbourBudget, Transport: neighbourTransport(cfg)},
		tracker:  swarm.NewClient(gw, 2*time.Second),
		cache:    newCache(cfg.CacheBytes),
		health:   &health{badUntil: map[string]time.Time{}},
		uploads:  make(chan struct{}, cfg.MaxUploads),
		wake:     make(chan struct{}, 1),
		members:  map[string]*member{},
	}, nil
}

func neighbourTransport(cfg Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = cfg.NeighbourBudget
	t.MaxIdleConnsPerHost = 4
	return t
}

// Run keeps the proxy's swarm memberships alive until ctx ends; then it leaves every swarm.
func (p *Proxy) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
		p.mu.Lock()
		for _, m := range p.members {
			if m.running {
				continue
			}
			m.mu.Lock()
			m.running = true
			m.mu.Unlock()
			wg.Go(func() { m.run(ctx, p) })
		}
		p.mu.Unlock()
	}
}

// member returns the channel's membership, creating it if needed (nil beyond maxChannels).
func (p *Proxy) member(channel string) *member {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.members[channel]
	if m == nil && len(p.members) < maxChannels {
		m = newMember(channel)
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
// shared fetch of it (neighbour, then gateway). The caller's ctx bounds only its own wait.
func (p *Proxy) fetch(ctx context.Context, m *member, info segInfo) (*segment, error) {
	if s := p.cache.get(info.digest); s != nil {
		m.stats.cacheHits.Add(1)
		return s, nil
	}
	timeout := p.cfg.NeighbourBudget + p.cfg.GatewayTimeout + 2*time.Second
	f := p.flights.Do(ctx, info.digest, timeout, func(fctx context.Context) (*segment, error) {
		return p.load(fctx, m, info) // caches what it gets before the flight ends
	})
	return f.Wait(ctx)
}

// load is the ladder below the cache: a neighbour that holds the segment (within the
// neighbour budget), else the gateway.
func (p *Proxy) load(ctx context.Context, m *member, info segInfo) (*segment, error) {
	// Re-check the cache: a flight for this digest may have finished between the caller's
	// miss and this flight's start.
	if s := p.cache.get(info.digest); s != nil {
		return s, nil
	}
	if s := p.fromSwarm(ctx, m, info); s != nil {
		p.keep(m, s)
		return s, nil
	}
	s, err := p.fromGateway(ctx, m, info)
	if err != nil {
		return nil, err
	}
	p.keep(m, s)
	return s, nil
}

// fromSwarm asks the tracker who holds the segment and tries them. It returns nil when the
// proxy is not (yet) in the swarm, the tracker is away, nobody holds it, or this proxy was
// elected to fetch it from the gateway for the others.
func (p *Proxy) fromSwarm(ctx context.Context, m *member, info segInfo) *segment {
	id := m.peerID()
	if id == "" {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	resp, err := p.tracker.Lookup(lctx, swarm.LookupRequest{PeerID: id, Channel: m.channel,
		Digest: info.digest.String(), Group: p.cfg.Group, Leech: p.cfg.NoUpload})
	cancel()
	if err != nil || resp.Fetch || len(resp.Holders) == 0 {
		return nil
	}
	return p.fromNeighbours(ctx, m, resp.Holders, info)
}

// fromGateway fetches the segment from the gateway and checks it against the playlist's
// size and digest too.
func (p *Proxy) fromGateway(ctx context.Context, m *member, info segInfo) (*segment, error) {
	data, err := p.gatewayGet(ctx, info.path, p.cfg.MaxSegmentBytes)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != info.size || sha256.Sum256(data) != info.digest {
		return nil, fmt.Errorf("gateway segment %s does not match its playlist digest", info.path)
	}
	m.stats.bytesFromGateway.Add(int64(len(data)))
	m.stats.segmentsFromGateway.Add(1)
	return &segment{digest: info.digest, channel: m.channel, data: data}, nil
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
		body, err := p.gatewayGet(gctx, m.playlistPath(r, ""), playlist.MaxPlaylistBytes)
		cancel()
		if err != nil {
			continue
		}
		if w, err := playlist.ParseGateway(body); err == nil {
			m.learn(r, w, now, false)
		}
	}
}

// prefetch fetches a segment the player does not see yet (see Config.HoldBack) after a
// random pause of up to half a target duration. Every proxy that noticed the segment does
// the same, so the one whose pause ends first is elected to fetch it from the gateway and
// the rest get it from a neighbour: the gateway's cost is spread over the swarm rather
// than always falling on the proxy whose player polls first.
func (p *Proxy) prefetch(ctx context.Context, m *member, info segInfo) {
	playing, td := m.playing(p.cfg.Now())
	if !playing {
		return
	}
	t := time.NewTimer(rand.N(td / 2))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	_, _ = p.fetch(ctx, m, info)
}

// keep caches a verified segment and queues its "have" announcement.
func (p *Proxy) keep(m *member, s *segment) {
	p.cache.add(s)
	if p.cfg.NoUpload {
		return
	}
	select {
	case m.haves <- s.digest:
	default:
	}
}

// gatewayGet GETs path (with query) from the gateway, bounded in size and time.
func (p *Proxy) gatewayGet(ctx context.Context, path string, limit int64) ([]byte, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.gateway.ResolveReference(ref).String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.gwHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return readBody(resp, limit)
}

// Status returns the proxy's counters.
func (p *Proxy) Status() Status {
	st := Status{Channels: map[string]ChannelStatus{}}
	st.CacheBytes, st.CacheSegments = p.cache.size()
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, m := range p.members {
		c := m.stats.snapshot()
		st.Totals.Add(c)
		st.Channels[name] = ChannelStatus{Counters: c, CacheHits: m.stats.cacheHits.Load(), PeerID: m.peerID(), Offload: c.Offload()}
	}
	return st
}
