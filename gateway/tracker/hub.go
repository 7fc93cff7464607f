package tracker

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// The hub keeps this gateway's event streams: who plays what (cells, and the renditions
// segment events go to) and the plan each was last sent. Its planner recomputes the plans
// of a cell's local members when the cell changes — a member of this gateway joined or left
// — and every rosterRefresh (members of other gateways of the fleet), and sends those that
// changed.

const (
	// rosterRefresh is how often every cell with local members is planned again, to follow
	// the members other gateways of a fleet admit and lose.
	rosterRefresh = 2 * time.Second
	// planEvery spaces the planner's rounds: a flash crowd's joins are planned in batches.
	planEvery = 100 * time.Millisecond
	// queueLen bounds the events queued for one stream; a segment event that does not fit
	// is dropped (the proxy learns segments from its playlist too), a plan that does not
	// fit ends the stream (the proxy reconnects and gets its plan afresh).
	queueLen = 256
	// evidenceFor is how long a peer a plan named as a source stays one its member may
	// report (see bans); maxEvidence bounds the peers remembered per member.
	evidenceFor = 2 * time.Minute
	maxEvidence = 256
	// leaveGrace is how long a peer whose stream ended keeps its registration, and so its
	// slots and its place in its cells' plans, before it is taken out: a proxy that
	// reconnects within it (a stream cut by a saturated link, a gateway of the fleet that
	// restarted) resumes its place, and its cells' plans do not change. maxDeparted bounds
	// the peers waiting; past it, a peer leaves at once.
	leaveGrace  = 8 * time.Second
	maxDeparted = 1 << 17
)

// cellID names a cell: the peers of a channel playing one rendition in one group.
type cellID struct{ channel, rendition, group string }

// streamID names the segment events of a rendition.
type streamID struct{ channel, rendition string }

// subscriber is one open event stream: a peer of this gateway.
type subscriber struct {
	peer  swarm.Peer     // Renditions: the renditions it plays
	slots map[string]int // its slot in each rendition's cell
	out   chan []byte    // encoded events to write
	kick  chan struct{}  // closed to end the stream
	once  sync.Once      // closes kick

	// Guarded by hub.mu.
	plans    map[string]swarm.Plan // as last sent, by rendition
	evidence map[string]time.Time  // peers its plans named as sources -> when last
}

// end closes the stream.
func (s *subscriber) end() { s.once.Do(func() { close(s.kick) }) }

// cellState is what the hub knows of a cell with local members.
type cellState struct {
	subs  map[*subscriber]struct{}
	dirty bool
}

type hub struct {
	t       *Tracker
	wake    chan struct{} // the planner has dirty cells
	dropped atomic.Int64  // segment events dropped for full queues
	plans   atomic.Int64  // plans sent
	opened  atomic.Int64  // event streams opened
	signals [numSignalResults]atomic.Int64
	outbox  chan swarm.FleetSignal // signals from the bus to publish again (signal.go)

	mu       sync.Mutex // guards the following fields
	subs     map[string]*subscriber
	cells    map[cellID]*cellState
	streams  map[streamID]map[*subscriber]struct{}
	departed map[string]departure      // peers whose stream ended, by ID
	rosters  map[cellID][]swarm.Member // each planned cell's roster, as last read
	offers   map[offerKey]time.Time    // offers relayed, for their answers (signal.go)
}

// departure is a peer whose stream ended, and when it leaves unless it comes back.
type departure struct {
	peer  swarm.Peer
	after time.Time
}

func newHub(t *Tracker) *hub {
	return &hub{t: t, wake: make(chan struct{}, 1), outbox: make(chan swarm.FleetSignal, outboxLen), subs: map[string]*subscriber{}, cells: map[cellID]*cellState{},
		streams: map[streamID]map[*subscriber]struct{}{}, departed: map[string]departure{},
		rosters: map[cellID][]swarm.Member{}, offers: map[offerKey]time.Time{}}
}

func newSubscriber(p swarm.Peer, slots map[string]int) *subscriber {
	return &subscriber{peer: p, slots: slots, out: make(chan []byte, queueLen), kick: make(chan struct{}),
		plans: map[string]swarm.Plan{}, evidence: map[string]time.Time{}}
}

// add makes s the stream of its peer (ending an older one of the same peer) and plans its
// cells soon.
func (h *hub) add(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.subs[s.peer.ID]; old != nil {
		h.detach(old)
		old.end()
	}
	h.subs[s.peer.ID] = s
	h.opened.Add(1)
	delete(h.departed, s.peer.ID)
	for _, r := range s.peer.Renditions {
		c := h.cells[cellOf(s.peer, r)]
		if c == nil {
			c = &cellState{subs: map[*subscriber]struct{}{}}
			h.cells[cellOf(s.peer, r)] = c
		}
		c.subs[s] = struct{}{}
		c.dirty = true
		sid := streamID{s.peer.Channel, r}
		if h.streams[sid] == nil {
			h.streams[sid] = map[*subscriber]struct{}{}
		}
		h.streams[sid][s] = struct{}{}
	}
	h.signal()
}

// remove forgets s, unless another stream of its peer replaced it; it reports whether s
// was its peer's stream.
func (h *hub) remove(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[s.peer.ID] != s {
		return false
	}
	delete(h.subs, s.peer.ID)
	h.detach(s)
	h.signal()
	return true
}

// depart records that p's stream ended at now: it leaves the registry leaveGrace later
// unless a stream of it opens again meanwhile (see leave).
func (h *hub) depart(ctx context.Context, p swarm.Peer, now time.Time) {
	h.mu.Lock()
	full := len(h.departed) >= maxDeparted
	if !full {
		h.departed[p.ID] = departure{peer: p, after: now.Add(leaveGrace)}
	}
	h.mu.Unlock()
	if full {
		h.t.leave(ctx, p)
	}
}

// due returns the departed peers whose grace ended by now, and forgets them.
func (h *hub) due(now time.Time) []swarm.Peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []swarm.Peer
	for id, d := range h.departed {
		if !now.Before(d.after) {
			out = append(out, d.peer)
			delete(h.departed, id)
		}
	}
	return out
}

// detach takes s out of its cells and streams (h.mu held).
func (h *hub) detach(s *subscriber) {
	for _, r := range s.peer.Renditions {
		if c := h.cells[cellOf(s.peer, r)]; c != nil {
			delete(c.subs, s)
			c.dirty = true
			if len(c.subs) == 0 {
				delete(h.cells, cellOf(s.peer, r))
				delete(h.rosters, cellOf(s.peer, r))
			}
		}
		sid := streamID{s.peer.Channel, r}
		delete(h.streams[sid], s)
		if len(h.streams[sid]) == 0 {
			delete(h.streams, sid)
		}
	}
}

func cellOf(p swarm.Peer, rendition string) cellID {
	return cellID{channel: p.Channel, rendition: rendition, group: p.CellGroup()}
}

// signal wakes the planner.
func (h *hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// kick ends peer id's stream, if it has one here.
func (h *hub) kick(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.subs[id]; s != nil {
		s.end()
	}
}

// broadcast queues an encoded segment event to every stream of a rendition.
func (h *hub) broadcast(sid streamID, ev []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams[sid] {
		select {
		case s.out <- ev:
		default:
			h.dropped.Add(1)
		}
	}
}

// witnessed reports whether peer id's plans named peer src as a source lately.
func (h *hub) witnessed(id, src string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.subs[id]
	if s == nil {
		return false
	}
	at, ok := s.evidence[src]
	return ok && now.Sub(at) <= evidenceFor
}

// localIDs returns the peer IDs of this gateway's streams, by channel.
func (h *hub) localIDs() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for id, s := range h.subs {
		out[s.peer.Channel] = append(out[s.peer.Channel], id)
	}
	return out
}

// len returns the number of open streams.
func (h *hub) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// plan runs the planner until ctx ends: dirty cells at once (at most every planEvery),
// every cell every rosterRefresh.
func (h *hub) plan(ctx context.Context) {
	refresh := time.NewTicker(rosterRefresh)
	defer refresh.Stop()
	pace := time.NewTimer(0)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-refresh.C:
			h.mu.Lock()
			for _, c := range h.cells {
				c.dirty = true
			}
			h.mu.Unlock()
		}
		select { // pace the rounds
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		h.round(ctx)
		pace.Reset(planEvery)
	}
}

// round plans every dirty cell.
func (h *hub) round(ctx context.Context) {
	h.mu.Lock()
	var dirty []cellID
	for id, c := range h.cells {
		if c.dirty {
			c.dirty = false
			dirty = append(dirty, id)
		}
	}
	h.mu.Unlock()
	// Group cells first: a site's cell then takes its feeders from its group cell's roster
	// as just read (one registry read per group cell and round at most, see feeders).
	site := func(id cellID) int {
		if strings.Contains(id.group, "@") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(dirty, func(a, b cellID) int { return cmp.Compare(site(a), site(b)) })
	parents := map[cellID][]swarm.Member{}
	for _, id := range dirty {
		if ctx.Err() != nil {
			return
		}
		h.planCell(ctx, id, parents)
	}
}

// planCell reads a cell's roster and sends its local members the plans that changed. A
// local member the registry no longer lists (its registration expired while this gateway
// could not refresh it) subscribes again.
func (h *hub) planCell(ctx context.Context, id cellID, parents map[cellID][]swarm.Member) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	members, err := h.t.reg.Roster(rctx, id.channel, id.rendition, id.group)
	cancel()
	if err != nil {
		h.t.log.Debug("roster unavailable: plans unchanged", "channel", id.channel, "rendition", id.rendition, "err", err)
		h.markDirty(id)
		return
	}
	feed := h.feeders(ctx, id, parents)
	listed := make(map[string]bool, len(members))
	for _, m := range members {
		listed[m.ID] = true
	}
	roster := swarm.NewRoster(members, h.t.cfg.Seeders)
	now := h.t.cfg.Now()
	var lost []*subscriber
	h.mu.Lock()
	c := h.cells[id]
	if c == nil {
		h.mu.Unlock()
		return
	}
	h.rosters[id] = members
	parents[id] = members
	for s := range c.subs {
		if !listed[s.peer.ID] {
			lost = append(lost, s)
			continue
		}
		p := roster.Plan(id.rendition, s.slots[id.rendition], s.peer.Leech).Fed(feed)
		if old, ok := s.plans[id.rendition]; ok && old.Equal(p) {
			continue
		}
		h.send(s, p, now)
	}
	h.mu.Unlock()
	for _, s := range lost {
		h.resubscribe(ctx, s, id)
	}
}

// feeders returns the feeders of a site's cell (swarm.Feeders): its group's members that
// neighbours can dial, from its group cell's roster as this round read it (parents: the
// rosters read this round, by cell), else from the registry, once a round (none for a cell
// that is not a site's, or when the registry does not answer: the roots fetch from the
// gateway, as before).
func (h *hub) feeders(ctx context.Context, id cellID, parents map[cellID][]swarm.Member) [swarm.Stripes][]swarm.Source {
	group, site, ok := strings.Cut(id.group, "@")
	if !ok {
		return [swarm.Stripes][]swarm.Source{}
	}
	parent := cellID{channel: id.channel, rendition: id.rendition, group: group}
	members, read := parents[parent]
	if !read {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		var err error
		members, err = h.t.reg.Roster(rctx, id.channel, id.rendition, group)
		cancel()
		if err != nil {
			members = nil
		}
		parents[parent] = members // a failed read is not tried again this round
	}
	return swarm.Feeders(members, site, swarm.MaxFeeders)
}

// planFromCache queues a new stream's first plans at once, from its cells' rosters as last
// read with the new member added (h.mu not held): a joiner has its plan with its hello,
// before its player asks for a segment, without a registry read per join. A cell this
// gateway has not planned yet waits for the planner, which also corrects these plans. A
// rendition the planner sent a plan for already (it ran between add and this) gets none:
// the planner's came from a roster read since, and one from the cache would repeat it or
// put an older one after it.
func (h *hub) planFromCache(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.t.cfg.Now()
	for _, r := range s.peer.Renditions {
		cell := cellOf(s.peer, r)
		cached := h.rosters[cell]
		if _, planned := s.plans[r]; cached == nil || planned {
			continue
		}
		me := swarm.Member{Peer: s.peer, Slot: s.slots[r]}
		members := make([]swarm.Member, 0, len(cached)+1)
		for _, m := range cached {
			if m.ID != s.peer.ID && (m.Slot != me.Slot || m.Leech != me.Leech) {
				members = append(members, m)
			}
		}
		members = append(members, me)
		var feed [swarm.Stripes][]swarm.Source
		if group, site, ok := strings.Cut(cell.group, "@"); ok { // a site's cell: its group's feeders, as last read
			feed = swarm.Feeders(h.rosters[cellID{channel: cell.channel, rendition: r, group: group}], site, swarm.MaxFeeders)
		}
		h.send(s, swarm.NewRoster(members, h.t.cfg.Seeders).Plan(r, me.Slot, s.peer.Leech).Fed(feed), now)
		// The next joiner's plan sees this one: a crowd joins faster than the planner reads
		// rosters, and a joiner whose parent joined since the last read got a plan from
		// its grandparent, then the planner's, each a new connection to set up.
		h.rosters[cell] = members
	}
}

// send queues plan p to s and remembers it (h.mu held); a stream whose queue is full ends.
func (h *hub) send(s *subscriber, p swarm.Plan, now time.Time) {
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	select {
	case s.out <- encodeEvent(swarm.EventPlan, b):
	default:
		s.end()
		return
	}
	s.plans[p.Rendition] = p
	h.plans.Add(1)
	for _, sp := range p.Stripes {
		for _, src := range sp.Sources {
			s.evidence[src.ID] = now
		}
	}
	if len(s.evidence) > maxEvidence {
		for id, at := range s.evidence {
			if now.Sub(at) > evidenceFor {
				delete(s.evidence, id)
			}
		}
	}
}

// resubscribe registers a local member again (its slots may change), then plans its cell.
func (h *hub) resubscribe(ctx context.Context, s *subscriber, id cellID) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	slots, err := h.t.reg.Subscribe(rctx, s.peer, s.peer.Renditions)
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil && h.subs[s.peer.ID] == s {
		s.slots = slots
	}
	if c := h.cells[id]; c != nil {
		c.dirty = true
	}
}

// markDirty plans a cell again at the next round.
func (h *hub) markDirty(id cellID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.cells[id]; c != nil {
		c.dirty = true
	}
}
