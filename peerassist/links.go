package peerassist

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rawflow/rawflow/peerlink"
	"github.com/rawflow/rawflow/swarm"
)

// How a neighbour is reached. A plan names each source with the address of its neighbour
// port and whether it takes WebRTC (swarm.Source.ICE). Where that address can be dialled (a
// LAN, a host with an open port) the proxy fetches over TCP, which costs least; where it
// cannot (the source is behind a NAT) it fetches over a WebRTC data channel (package
// peerlink: ICE through the NATs with the gateway's STUN, DTLS-encrypted), set up through
// the gateway's signalling. Either way the same HTTP request goes to the same neighbour
// handler, and the same digest check judges the bytes: one scheduler, one integrity check.
//
// A source with an address is fetched over TCP, as on a LAN; when a connect to it fails
// (its address is a NAT's), a probe dials it again (probeWait) and, failing that, sets up
// the WebRTC link; the fetch meanwhile goes to the next rung, and the failure is not held
// against the source (errLinkPending). A source reached over WebRTC only (no address) gets
// its link set up as soon as a plan names it. A fetch that finds a link still coming up
// joins the set-up within its stall bound; a link not up by then is not the source's
// fault either: the next source or the gateway serves that segment.

// Transports a proxy uses for neighbours (Config.PeerTransport).
const (
	TransportAuto   = "auto"   // TCP where the address can be dialled, else WebRTC
	TransportDirect = "direct" // TCP only (no WebRTC)
	TransportICE    = "ice"    // WebRTC only, for sources that take it
)

const (
	// probeWait bounds the TCP connect that decides a source's path.
	probeWait = 2 * time.Second
	// pathMemory is how long a decided path holds before it is probed again.
	pathMemory = 10 * time.Minute
	// linkRetry and maxLinkRetry space the set-ups of a link that does not come up.
	linkRetry    = 15 * time.Second
	maxLinkRetry = 5 * time.Minute
	// linkFailsToPause link set-ups in a row that did not come up, whatever their sources,
	// pause every set-up for linkRetry; after it, one set-up is tried, and if it does not
	// come up either, the pause starts again, twice as long (up to maxLinkRetry), until one
	// comes up. A set-up costs a DTLS handshake and signals through the gateway; when none
	// comes up, the cause is this proxy's own (its NAT, its firewall, its CPU), and trying
	// the next source only adds load: in an overloaded 1,000-viewer run, connects that timed
	// out sent the proxies into 11,000 set-ups, none of which came up.
	linkFailsToPause = 4
	// maxProbes bounds the probes and link set-ups under way; more wait in probeQueue,
	// and past it are dropped (a fetch decides then).
	maxProbes  = 8
	probeQueue = 256
	// peerHostSuffix makes a neighbour's URL host from its peer ID: the HTTP transport
	// keeps its connections per peer (two proxies behind one NAT may share an address).
	peerHostSuffix = ".peer.invalid"
)

// errLinkPending: the WebRTC link to a source is being set up; not the source's fault.
var errLinkPending = errors.New("neighbour link still being set up")

type linkPath int

const (
	pathUnknown linkPath = iota
	pathDirect
	pathICE
)

// route is what the proxy knows of a source: its channel (whose member signals for it), the
// plan's entry, and the path found.
type route struct {
	channel string
	src     swarm.Source
	path    linkPath
	decided time.Time
	busy    bool // a probe or link set-up is under way
	// connecting counts the TCP connects to its address under way (not their TLS
	// handshakes): one that outlasts a fetch's stall bound is a NAT's doing, not the
	// source's (probeUndecided).
	connecting int
	// fails counts the link set-ups in a row that did not come up; none is tried again
	// before failedUntil.
	fails       int
	failedUntil time.Time
}

// routes keeps the sources' routes and runs the probes.
type routes struct {
	p      *Proxy
	link   *peerlink.Link // nil: TCP only
	mode   string
	probes chan string // peer IDs to probe

	mu sync.Mutex // guards the following fields
	m  map[string]*route
	// linkFails counts the link set-ups in a row that did not come up; none is tried
	// before linkPause.
	linkFails int
	linkPause time.Time
}

func newRoutes(p *Proxy, link *peerlink.Link, mode string) *routes {
	return &routes{p: p, link: link, mode: mode, probes: make(chan string, probeQueue), m: map[string]*route{}}
}

// key is the peerlink key of a source: its channel and peer ID.
func key(channel, id string) string { return channel + "/" + id }

// learn records the sources a plan names, and queues the link set-up of each new one
// reached over WebRTC only (no address, or TransportICE). A source with an address is
// fetched over TCP until a connect fails (see dial): a LAN pays nothing for WebRTC.
func (r *routes) learn(channel string, p swarm.Plan) {
	now := r.p.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sp := range p.Stripes {
		for _, src := range sp.Sources {
			r.learnOne(channel, src, now)
		}
	}
}

// learnOne records one source (r.mu held).
func (r *routes) learnOne(channel string, src swarm.Source, now time.Time) {
	rt := r.m[src.ID]
	if rt == nil {
		if len(r.m) >= maxNeighbourStates {
			clear(r.m)
		}
		rt = &route{}
		r.m[src.ID] = rt
	}
	if rt.src.Addr != src.Addr {
		rt.path = pathUnknown
	}
	rt.channel, rt.src = channel, src
	if r.link == nil || !src.ICE || src.Addr != "" && r.mode != TransportICE {
		return
	}
	if !rt.busy && (rt.path == pathUnknown || now.Sub(rt.decided) > pathMemory) && !now.Before(rt.failedUntil) {
		select {
		case r.probes <- src.ID:
			rt.busy = true
		default:
		}
	}
}

// run probes the queued sources until ctx ends, maxProbes at once.
func (r *routes) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range maxProbes {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-r.probes:
					r.probe(ctx, id)
				}
			}
		})
	}
}

// probe decides a source's path: TCP when its address takes a connection within probeWait
// (in auto mode), else WebRTC, whose link it then sets up.
func (r *routes) probe(ctx context.Context, id string) {
	rt, ok := r.get(id)
	if !ok {
		return
	}
	p := pathICE
	if r.mode == TransportAuto && swarm.AddrPolicy(r.p.policy.Load()).AllowsAddrPort(rt.src.Addr) && r.p.cfg.checkNeighbourAddr(rt.src.Addr) == nil {
		pctx, cancel := context.WithTimeout(ctx, probeWait)
		c, err := (&net.Dialer{}).DialContext(pctx, "tcp", rt.src.Addr)
		cancel()
		if err == nil {
			_ = c.Close()
			p = pathDirect
		}
	}
	var failed bool
	if p == pathICE {
		failed = r.paused() || !r.connect(ctx, rt)
	}
	r.decide(id, p, failed)
}

// paused reports whether link set-ups are paused (linkFailsToPause). After a pause the
// probes that find it over each try a set-up: at most maxProbes at once.
func (r *routes) paused() bool {
	now := r.p.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.Before(r.linkPause)
}

// connect sets up the WebRTC link to a source (a stream opened and closed: the link stays
// up for the streams of the fetches that follow) and reports whether it came up.
func (r *routes) connect(ctx context.Context, rt route) bool {
	c, err := r.link.Dial(ctx, key(rt.channel, rt.src.ID))
	now := r.p.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.p.log.Debug("neighbour link not set up", "peer", rt.src.ID, "err", err)
		if r.linkFails++; r.linkFails >= linkFailsToPause {
			r.linkPause = now.Add(min(linkRetry<<min(r.linkFails-linkFailsToPause, 8), maxLinkRetry))
		}
		return false
	}
	_ = c.Close()
	r.linkFails, r.linkPause = 0, time.Time{}
	return true
}

// get returns a copy of a source's route.
func (r *routes) get(id string) (route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.m[id]
	if rt == nil {
		return route{}, false
	}
	return *rt, true
}

// decide records a source's path, and whether its link failed to come up: then no fetch
// tries it for linkRetry, doubled at each failure in a row up to maxLinkRetry (two NATs
// that map ports per destination, or a firewall, may never let it up).
func (r *routes) decide(id string, p linkPath, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.m[id]
	if rt == nil {
		return
	}
	now := r.p.cfg.Now()
	rt.path, rt.decided, rt.busy = p, now, false
	if !failed {
		rt.fails, rt.failedUntil = 0, time.Time{}
		r.p.neigh.known(id)
		return
	}
	rt.fails++
	rt.failedUntil = now.Add(min(linkRetry<<min(rt.fails-1, 8), maxLinkRetry))
}

// note records a source's route before a fetch from it (a source a fetch uses may come
// from a plan this proxy has replaced since).
func (r *routes) note(channel string, src swarm.Source) {
	now := r.p.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.learnOne(channel, src, now)
}

// overLink reports whether a source is reached over its WebRTC link: it takes WebRTC, and
// the probe found its address takes no connection, or it has none, or the proxy uses
// WebRTC only.
func (r *routes) overLink(rt route) bool {
	return r.link != nil && rt.src.ICE && (rt.path == pathICE || r.mode == TransportICE || rt.src.Addr == "")
}

// dial opens a connection to the neighbour named by a URL host made by peerHost: over TCP
// when its path is direct or not decided yet (or it takes no WebRTC), else over its
// WebRTC link when that is up (errLinkPending when it is not: a set-up is queued).
func (r *routes) dial(ctx context.Context, dialTCP func(context.Context, string, string) (net.Conn, error), host string) (net.Conn, error) {
	id := hostPeer(host)
	rt, ok := r.get(id)
	if !ok {
		return nil, fmt.Errorf("neighbour %s: no plan names it", id)
	}
	if r.overLink(rt) {
		if now := r.p.cfg.Now(); now.Before(rt.failedUntil) {
			return nil, fmt.Errorf("%w: it failed lately, again at %s", errLinkPending, rt.failedUntil.Format(time.TimeOnly))
		}
		if !r.link.Connected(key(rt.channel, id)) { // a link up is used, paused or not
			if r.paused() {
				return nil, fmt.Errorf("%w: set-ups paused, none came up lately", errLinkPending)
			}
			r.queue(id) // the probe's set-up records how it ends
		}
		// A link still coming up is joined: the fetch's stall timer bounds the wait, and
		// a link not up by then is not the source's fault (linkPending).
		return r.link.Dial(ctx, key(rt.channel, id))
	}
	if err := r.p.checkPolicy(rt.src.Addr); err != nil {
		return nil, err
	}
	if err := r.p.cfg.checkNeighbourAddr(rt.src.Addr); err != nil {
		return nil, err
	}
	r.connects(id, 1)
	c, err := dialTCP(ctx, "tcp", rt.src.Addr)
	r.connects(id, -1)
	if err != nil && r.link != nil && rt.src.ICE && rt.path == pathUnknown {
		// The probe has not decided yet: an address that takes no connection is a NAT's,
		// not the source's fault.
		r.queue(id)
		return nil, fmt.Errorf("%w: %w", errLinkPending, err)
	}
	if err != nil {
		return nil, err
	}
	r.tookConnection(id, rt.src.Addr)
	if rt.src.Cert == "" {
		return c, nil
	}
	return r.p.dialPinned(ctx, c, rt.src.Cert)
}

// tookConnection records that a source's address took a TCP connection: its path is
// direct, decided as by a probe. A later connect that hangs is then a busy source's (or a
// starved proxy's), counted as any failure, never taken for a NAT: in an overloaded
// 1,000-viewer run, proxies whose connects to sources they had fetched from for a minute
// timed out set up 3,000-4,000 WebRTC links per 500 proxies, none of which came up, and
// their handshakes kept the machine overloaded.
func (r *routes) tookConnection(id, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.m[id]; rt != nil && rt.src.Addr == addr && rt.path == pathUnknown {
		rt.path, rt.decided = pathDirect, r.p.cfg.Now()
		r.p.neigh.known(id)
	}
}

// queue queues a probe of a source unless one is under way.
func (r *routes) queue(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.m[id]; rt != nil && !rt.busy {
		select {
		case r.probes <- id:
			rt.busy = true
		default:
		}
	}
}

// pending reports whether a source's path is not known yet: not decided, or over a
// WebRTC link that is not up.
func (r *routes) pending(id string) bool {
	rt, ok := r.get(id)
	return ok && (rt.path == pathUnknown || r.linkDown(rt))
}

// linkPending reports whether a source is reached over WebRTC and its link is not up.
func (r *routes) linkPending(id string) bool {
	rt, ok := r.get(id)
	return ok && r.linkDown(rt)
}

// linkDown reports whether a route goes over a WebRTC link that is not up.
func (r *routes) linkDown(rt route) bool {
	return r.overLink(rt) && !r.link.Connected(key(rt.channel, rt.src.ID))
}

// connects adds n to the TCP connects under way to a source's address.
func (r *routes) connects(id string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.m[id]; rt != nil {
		rt.connecting = max(rt.connecting+n, 0)
	}
}

// probeUndecided queues the probe of a source that takes WebRTC, whose path is not decided
// and whose address has a TCP connect under way, and reports whether it did (or one is
// under way). A fetch that got no connection to such a source within its stall bound says
// so: a NAT that drops the SYNs to its address leaves the connect hanging (Go's transport
// lets the dial outlive the request, so the dial's own error comes too late to tell), and
// that is not the source's fault. A source whose address answered, but whose handshake or
// answer is slow, is busy, not behind a NAT: that is a failure as any other (taken for a
// NAT, every busy neighbour of a crowd's join would get a WebRTC set-up).
func (r *routes) probeUndecided(id string) bool {
	rt, ok := r.get(id)
	if !ok || r.link == nil || !rt.src.ICE || rt.path != pathUnknown || rt.connecting == 0 {
		return false
	}
	r.queue(id)
	return true
}

// peerHost is the URL host of a neighbour's requests: its peer ID, hex-encoded after "x-"
// when it is not one the gateway issues (a plan's word: it must not break the URL).
func peerHost(id string) string {
	if swarm.ValidPeerID(id) {
		return id + peerHostSuffix
	}
	return "x-" + hex.EncodeToString([]byte(id)) + peerHostSuffix
}

// hostPeer is peerHost's inverse.
func hostPeer(host string) string {
	id := strings.TrimSuffix(host, peerHostSuffix)
	if h, ok := strings.CutPrefix(id, "x-"); ok {
		if b, err := hex.DecodeString(h); err == nil {
			return string(b)
		}
	}
	return id
}

// signal sends a peerlink signal for member channel to the peer its key names.
func (p *Proxy) signal(ctx context.Context, to string, s peerlink.Signal) error {
	channel, id, ok := strings.Cut(to, "/")
	if !ok {
		return fmt.Errorf("peer link key %q: want CHANNEL/PEER", to)
	}
	p.mu.Lock()
	m := p.members[channel]
	p.mu.Unlock()
	if m == nil {
		return fmt.Errorf("channel %s: not followed", channel)
	}
	me, token := m.credentials()
	if me == "" {
		return fmt.Errorf("channel %s: not joined yet", channel)
	}
	m.stats.trackerRequests.Add(1)
	return p.tracker.Signal(ctx, swarm.SignalRequest{PeerID: me, Channel: channel, Token: token, To: id,
		Signal: swarm.Signal{Session: s.Session, Kind: s.Kind, SDP: s.SDP}})
}

// iceServers returns the ICE servers a hello announces: the gateway's own STUN first.
func (p *Proxy) iceServers(h swarm.Hello) []peerlink.ICEServer {
	var out []peerlink.ICEServer
	if h.STUNPort > 0 && h.STUNPort <= 65535 {
		out = append(out, peerlink.ICEServer{URLs: []string{"stun:" + net.JoinHostPort(p.gateway.Hostname(), strconv.Itoa(h.STUNPort))}})
	}
	for _, s := range h.ICEServers[:min(len(h.ICEServers), swarm.MaxICEServers)] {
		out = append(out, peerlink.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// loopbackHost reports whether a gateway host is this machine (tests, the demo): its
// proxies' WebRTC links then gather loopback candidates too.
func loopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// LinkListener returns the listener of the streams neighbours open over WebRTC, which the
// neighbour handler serves like the neighbour port; nil without WebRTC.
func (p *Proxy) LinkListener() net.Listener {
	if p.link == nil {
		return nil
	}
	return p.link.Listener()
}
