package tracker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/rawflow/rawflow/swarm"
)

// Registry is what the tracker needs of the registry its gateway shares with the fleet
// (swarm.Memory, swarm.Redis).
type Registry interface {
	Subscribe(ctx context.Context, p swarm.Peer, renditions []string) (map[string]int, error)
	Refresh(ctx context.Context, channel string, ids []string) error
	Leave(ctx context.Context, channel, id string) error
	Peer(ctx context.Context, channel, id string) (p swarm.Peer, ok bool, err error)
	Roster(ctx context.Context, channel, rendition, group string) ([]swarm.Member, error)
	AddStats(ctx context.Context, channel string, c swarm.Counters) error
	AddSample(ctx context.Context, channel string, at time.Time, s swarm.Sample) error
}

// Config is the tracker's configuration. The zero value of every field but Served means its
// default; New applies them.
type Config struct {
	// Served reports whether the gateway serves a channel; required.
	Served func(channel string) bool
	// Called, when set, is told of every call admitted for a served channel (the gateway
	// counts them).
	Called func(channel string)
	// PeerKey signs peer tokens; gateways of a fleet must share it. nil: a random key.
	PeerKey []byte
	// Seeders is how many roots each stripe of a cell has: each fetches the stripe's
	// segments from the gateway. Default 1 (at most swarm.MaxSeeders).
	Seeders int
	// ReportInterval is how often proxies report their counters. Default 10 s.
	ReportInterval time.Duration
	// PeerTTL is the registry's peer TTL (swarm.Options.PeerTTL): open streams are
	// refreshed every third of it. Default swarm.DefaultPeerTTL.
	PeerTTL time.Duration
	// JoinRate is the new peers per second one client address may bring (burst ten times
	// that). Default 100.
	JoinRate float64
	// PeerRate is the calls per second one peer may make (burst 10). Default 1.
	PeerRate float64
	// AddressRate is the calls per second one client address may make, all its peers
	// together (burst twice that): high enough for a large office behind one NAT.
	// Default 2000.
	AddressRate float64
	// PeerAddrs is which addresses a peer may advertise as its neighbour port (and
	// proxies may dial: Hello announces it). The zero value admits public addresses only.
	PeerAddrs swarm.AddrPolicy
	// AllowOrigins are the web origins whose pages may play through proxies, announced in
	// every Hello (at most swarm.MaxAllowOrigins).
	AllowOrigins []string
	// STUNPort is the UDP port on which the gateway's host answers STUN, announced in every
	// Hello; 0: none.
	STUNPort int
	// STUNAltPort is a second UDP port of that host answering STUN (0: none), announced
	// with it: proxies tell a symmetric NAT by the two (swarm.Hello.STUNAltPort).
	STUNAltPort int
	// ICEServers are further STUN and TURN servers announced in every Hello (at most
	// swarm.MaxICEServers). A TURN server (turn: or turns: URL) without a username gets
	// credentials issued per peer from TURNSecret.
	ICEServers []swarm.ICEServer
	// TURNSecret is the secret shared with the TURN servers (coturn's static-auth-secret,
	// "TURN REST API" credentials): a peer's username is EXPIRY:PEER-ID, its credential
	// base64(HMAC-SHA1(secret, username)), valid for TURNCredentialTTL.
	TURNSecret []byte
	// MaxStreams bounds the event streams this gateway serves at once. Default 50,000.
	MaxStreams int
	// PeersPerAddress bounds the peer identities (open event streams) one client address
	// may hold at once; more get 429 (reason "identities"). Default 2000: a campus or a
	// carrier-grade NAT (1,000 viewers of one channel behind one address must fit).
	PeersPerAddress int
	// ReportReadTimeout bounds the time to read a report's body. Default 10 s.
	ReportReadTimeout time.Duration
	Logger            *slog.Logger
	Now               func() time.Time
}

func (c *Config) setDefaults() {
	if len(c.PeerKey) == 0 {
		c.PeerKey = make([]byte, 32)
		_, _ = rand.Read(c.PeerKey)
	}
	c.Seeders = min(max(c.Seeders, 1), swarm.MaxSeeders)
	if c.ReportInterval <= 0 {
		c.ReportInterval = 10 * time.Second
	}
	if c.PeerTTL <= 0 {
		c.PeerTTL = swarm.DefaultPeerTTL
	}
	if c.JoinRate <= 0 {
		c.JoinRate = 100
	}
	if c.PeerRate <= 0 {
		c.PeerRate = 1
	}
	if c.AddressRate <= 0 {
		c.AddressRate = 2000
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 50_000
	}
	if c.PeersPerAddress <= 0 {
		c.PeersPerAddress = 2000
	}
	if c.ReportReadTimeout <= 0 {
		c.ReportReadTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Tracker is a gateway's tracker. Its routes are PathEvents and PathReport (Register); Run
// keeps its streams' registrations alive and plans their cells; Published tells it of
// every segment its gateway lists.
type Tracker struct {
	cfg     Config
	reg     Registry
	log     *slog.Logger
	hub     *hub
	bus     SignalBus // nil: no fleet to pass signals to
	limits  *limits
	idents  identities
	meter   meter
	bans    bans
	streams atomic.Int64 // event streams being served

	mu      sync.Mutex       // guards refused
	refused map[string]int64 // served channel -> refusals not yet added to its stats
}

// New returns a tracker on reg.
func New(cfg Config, reg Registry) *Tracker {
	cfg.setDefaults()
	t := &Tracker{cfg: cfg, reg: reg, log: cfg.Logger.With("component", "tracker")}
	t.hub = newHub(t)
	if b, ok := reg.(SignalBus); ok { // a fleet's registry: signals between its gateways
		t.bus = b
	}
	t.meter.interval = cfg.ReportInterval
	t.limits = &limits{
		joins:     newLimiter(cfg.JoinRate, int(10*cfg.JoinRate), cfg.Now),
		peers:     newLimiter(cfg.PeerRate, 10, cfg.Now),
		addresses: newLimiter(cfg.AddressRate, int(2*cfg.AddressRate), cfg.Now),
	}
	return t
}

// Register adds the tracker's routes to e.
func (t *Tracker) Register(e *echo.Echo) {
	e.GET(swarm.PathEvents, t.handleEvents)
	e.POST(swarm.PathReport, t.handleReport, middleware.BodyLimit(strconv.Itoa(swarm.MaxRequestBytes)))
	e.POST(swarm.PathSignal, t.handleSignal, middleware.BodyLimit(strconv.Itoa(swarm.MaxRequestBytes)))
}

// Run keeps the registrations of this gateway's streams alive, plans their cells and adds
// its refusals to the stats until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { t.hub.plan(ctx) })
	if t.bus != nil {
		wg.Go(func() { t.receiveSignals(ctx) })
		wg.Go(func() { t.sendSignals(ctx) })
	}
	refresh := time.NewTicker(t.cfg.PeerTTL / 3)
	defer refresh.Stop()
	flush := time.NewTicker(2 * time.Second)
	defer flush.Stop()
	departures := time.NewTicker(time.Second)
	defer departures.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-refresh.C:
			t.refresh(ctx)
		case <-flush.C:
			t.flush(ctx)
		case <-departures.C:
			t.departures(ctx)
		}
	}
}

// departures takes out of the registry the peers whose stream ended leaveGrace ago and did
// not open again.
func (t *Tracker) departures(ctx context.Context) {
	for _, p := range t.hub.due(t.cfg.Now()) {
		t.leave(ctx, p)
	}
}

// leave takes p out of the registry.
func (t *Tracker) leave(ctx context.Context, p swarm.Peer) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := t.reg.Leave(lctx, p.Channel, p.ID); err != nil {
		t.log.Debug("leave after stream end failed", "channel", p.Channel, "peer", p.ID, "err", err)
	}
}

// refresh extends the registrations of this gateway's streams: one call per channel.
func (t *Tracker) refresh(ctx context.Context) {
	for channel, ids := range t.hub.localIDs() {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := t.reg.Refresh(rctx, channel, ids); err != nil {
			t.log.Debug("refresh failed", "channel", channel, "peers", len(ids), "err", err)
		}
		cancel()
	}
}

// Published tells the tracker that its gateway listed a segment: every stream of the
// rendition gets a segment event.
func (t *Tracker) Published(channel string, ev swarm.SegmentEvent) {
	t.meter.published(channel, ev)
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	t.hub.broadcast(streamID{channel, ev.Rendition}, encodeEvent(swarm.EventSegment, b))
}

// Stats are the tracker's own counters.
type Stats struct {
	Streams int                     // event streams open
	Refused [numReasons]int64       // calls refused, by Reason
	Dropped int64                   // segment events dropped for full queues
	Plans   int64                   // plans sent (a member's first, and each that changed)
	Opened  int64                   // event streams opened (joins and reconnections)
	Clamped int64                   // reports cut to what their peer could have played or uploaded
	Signals [numSignalResults]int64 // signals, by what became of them (signal.go)
}

// Snapshot returns the tracker's counters.
func (t *Tracker) Snapshot() Stats {
	st := Stats{Streams: t.hub.len(), Dropped: t.hub.dropped.Load(),
		Plans: t.hub.plans.Load(), Opened: t.hub.opened.Load(), Clamped: t.meter.clamped.Load()}
	for r := range st.Signals {
		st.Signals[r] = t.hub.signals[r].Load()
	}
	for r := range st.Refused {
		st.Refused[r] = t.limits.refused[r].Load()
	}
	return st
}

// admit applies the limits to a call for a served channel from addr, as peer id ("" for a
// new peer), counting a refusal for the channel's stats.
func (t *Tracker) admit(channel, addr, id string) (Reason, bool) {
	r, ok := t.limits.admit(addr, id)
	if ok && t.cfg.Called != nil {
		t.cfg.Called(channel)
	}
	if !ok {
		t.countRefusal(channel)
	}
	return r, ok
}

// countRefusal counts a refusal for the channel's stats (see flush).
func (t *Tracker) countRefusal(channel string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refused == nil {
		t.refused = map[string]int64{}
	}
	t.refused[channel]++
}

// flush adds the refusals not yet counted to their channels' stats (totals and buckets).
func (t *Tracker) flush(ctx context.Context) {
	t.mu.Lock()
	pending := t.refused
	t.refused = nil
	t.mu.Unlock()
	now := t.cfg.Now()
	for channel, n := range pending {
		c := swarm.Counters{TrackerRefused: n}
		if err := errors.Join(t.reg.AddStats(ctx, channel, c),
			t.reg.AddSample(ctx, channel, now, swarm.Sample{Gateway: true, Counters: c})); err != nil {
			t.log.Debug("refusals not recorded", "channel", channel, "err", err)
		}
	}
}

// encodeEvent returns an event in the stream's format.
func encodeEvent(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// errStreams: the gateway serves as many event streams as it may.
var errStreams = errors.New("too many event streams")

// status maps the tracker's errors to HTTP errors; others go to the echo's error handler.
func status(err error) error {
	switch {
	case errors.Is(err, swarm.ErrBadRequest):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error()).SetInternal(err)
	case errors.Is(err, swarm.ErrUnauthorized):
		return echo.NewHTTPError(http.StatusUnauthorized, "peer token missing, invalid or expired: join afresh").SetInternal(err)
	case errors.Is(err, swarm.ErrUnavailable):
		return echo.NewHTTPError(http.StatusServiceUnavailable, "registry unavailable").SetInternal(err)
	case errors.Is(err, errStreams):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return err
}
