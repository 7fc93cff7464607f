package swarm

import (
	"cmp"
	"container/heap"
	"context"
	"net"
	"slices"
)

// Cells. A cell is the peers of one channel that play one rendition in one locality group;
// each member holds a slot in it, the same as long as its registration lives, which its
// plan is computed from (see Roster). Uploaders and leeches have slot spaces of their own.
// A new member takes the lowest free slot, so a cell stays compact: the trees of its
// stripes stay shallow whatever the churn.

// MaxRenditionsPerPeer bounds the renditions one peer subscribes to at once.
const MaxRenditionsPerPeer = 4

// MaxRoster bounds the members one Roster returns.
const MaxRoster = 16384

// cellKey names a cell's slot space in a channel.
type cellKey struct {
	rendition, group string
	leech            bool
}

// cellsOf returns the cells p is a member of.
func cellsOf(p Peer) []cellKey {
	cells := make([]cellKey, 0, len(p.Renditions))
	for _, r := range p.Renditions {
		cells = append(cells, cellKey{rendition: r, group: p.CellGroup(), leech: p.Leech})
	}
	return cells
}

// checkSubscribe validates a subscription.
func checkSubscribe(p Peer, renditions []string) error {
	if err := checkChannelPeer(p.Channel, p.ID); err != nil {
		return err
	}
	if !ValidGroup(p.Group) {
		return badf("group %q: want at most 64 of A-Z a-z 0-9 _ . -", p.Group)
	}
	if p.Site != "" && net.ParseIP(p.Site) == nil {
		return badf("site %q: want an IP address", p.Site)
	}
	if len(renditions) > MaxRenditionsPerPeer {
		return badf("renditions: want at most %d, got %d", MaxRenditionsPerPeer, len(renditions))
	}
	for _, r := range renditions {
		if !ValidRendition(r) {
			return badf("rendition %q: want r0, r1, … or empty", r)
		}
	}
	return nil
}

// memCell is one slot space of a cell.
type memCell struct {
	slots map[string]int // peer id -> slot
	next  int            // every slot below next was handed out at some point
	free  slotHeap       // freed slots below next
}

// take gives id its slot: the one it holds, else the lowest free one.
func (c *memCell) take(id string) int {
	if s, ok := c.slots[id]; ok {
		return s
	}
	s := c.next
	if len(c.free) > 0 {
		s = heap.Pop(&c.free).(int)
	} else {
		c.next++
	}
	c.slots[id] = s
	return s
}

// release frees id's slot.
func (c *memCell) release(id string) {
	if s, ok := c.slots[id]; ok {
		delete(c.slots, id)
		heap.Push(&c.free, s)
	}
}

// slotHeap is a min-heap of slots.
type slotHeap []int

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h slotHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *slotHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *slotHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// cell returns the channel's slot space k, creating it (ch.mu held: m.mu).
func (ch *memChannel) cell(k cellKey) *memCell {
	if ch.cells == nil {
		ch.cells = map[cellKey]*memCell{}
	}
	c := ch.cells[k]
	if c == nil {
		c = &memCell{slots: map[string]int{}}
		ch.cells[k] = c
	}
	return c
}

// leaveCells frees p's slots in its cells but those in keep.
func (ch *memChannel) leaveCells(p Peer, keep []cellKey) {
	for _, k := range cellsOf(p) {
		if c := ch.cells[k]; c != nil && !slices.Contains(keep, k) {
			c.release(p.ID)
			if len(c.slots) == 0 {
				delete(ch.cells, k) // an empty cell starts again at slot 0
			}
		}
	}
}

// Subscribe registers p (or refreshes it) until PeerTTL from now as a member of the cells
// (channel, rendition, p.Group) of renditions, and returns its slot in each: the slot it
// holds already, else the lowest free one. It gives up its slots in cells it is no longer
// a member of (other renditions, another group, leech or not).
func (m *Memory) Subscribe(_ context.Context, p Peer, renditions []string) (map[string]int, error) {
	if err := checkSubscribe(p, renditions); err != nil {
		return nil, err
	}
	p.Renditions = slices.Clone(renditions)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	ch := m.channel(p.Channel, now)
	cells := cellsOf(p)
	if old, ok := ch.peers[p.ID]; ok {
		ch.leaveCells(old.Peer, cells)
	}
	slots := make(map[string]int, len(cells))
	for _, k := range cells {
		slots[k.rendition] = ch.cell(k).take(p.ID)
	}
	ch.peers[p.ID] = memPeer{Peer: p, expiry: m.expiry(now, m.opts.PeerTTL)}
	return slots, nil
}

// Refresh extends the registrations of the live peers ids until PeerTTL from now: one call
// for every peer a gateway serves.
func (m *Memory) Refresh(_ context.Context, channel string, ids []string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	ch := m.channels[channel]
	if ch == nil {
		return nil
	}
	for _, id := range ids {
		if p, ok := ch.peers[id]; ok && p.expiry > now {
			p.expiry = m.expiry(now, m.opts.PeerTTL)
			ch.peers[id] = p
		}
	}
	return nil
}

// Roster returns the live members of the cell (channel, rendition, group), uploaders and
// leeches, with their slots, in slot order (at most MaxRoster).
func (m *Memory) Roster(_ context.Context, channel, rendition, group string) ([]Member, error) {
	if err := checkStream(channel, rendition); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	ch := m.channel(channel, now)
	var out []Member
	for _, leech := range []bool{false, true} {
		c := ch.cells[cellKey{rendition: rendition, group: group, leech: leech}]
		if c == nil {
			continue
		}
		for id, slot := range c.slots {
			if p, ok := ch.peers[id]; ok && p.expiry > now {
				out = append(out, Member{Peer: p.Peer, Slot: slot})
			}
		}
	}
	sortMembers(out)
	return out[:min(len(out), MaxRoster)], nil
}

// sortMembers orders members uploaders first, then by slot.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int {
		if a.Leech != b.Leech {
			if a.Leech {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Slot, b.Slot)
	})
}
