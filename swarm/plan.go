package swarm

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// Distribution plans. The members of a cell — the peers of one channel playing one
// rendition in one locality group — each hold a stable slot (see Memory.Join). A segment
// with media sequence number seq belongs to stripe seq mod Stripes. In stripe s, the members
// whose slot is of class s (slot mod Stripes == s) form the interior of a tree: a heap in
// which class index j (slot / Stripes) has parent index (j-seeders)/Fanout, and the first
// seeders indices are the stripe's roots, which fetch its segments from the gateway; every
// other member is a leaf under a class-s member that precedes it: of its own class index
// when s is below its class, of the index before when above. A vacant place is
// skipped over: the nearest live ancestor stands in, and when none is live, the live
// class-s member with the smallest slot (else the cell's smallest) acts as root. Each
// member's sources in a stripe are its parent and the next live ancestor.
//
// So each segment costs the gateway one fetch per cell (seeders, when more), every member
// uploads about one copy per segment on average (interior in one stripe of Stripes, with up
// to Fanout+Stripes-1 children, Fanout+Stripes for a few of the first), the tree is
// Fanout-ary (depth log_Fanout(n/Stripes)+1), and a member's parents and children stay the
// same while the cell's membership does: proxies keep their connections to them. A member
// joining a cell that fills slot by slot changes no other member's plan (past the first
// index). Leeches hold slots of their own space and are leaves only.
//
// Plans are computed from the roster alone (Roster.Plan): every gateway of a fleet that
// reads the same roster gives every member the same plan.
const (
	// Stripes is the number of stripes a cell's segments are dealt into.
	Stripes = 4
	// Fanout is the number of interior children of an interior member.
	Fanout = 4
	// maxSources bounds the sources of a stripe in a plan: the parent and the next live
	// ancestor (or the acting root when no ancestor is live).
	maxSources = 2
)

// Member is a live peer of a cell, with its slot.
type Member struct {
	Peer
	Slot int `json:"slot"`
}

// Source is a peer a member fetches a stripe's segments from.
type Source struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	Group string `json:"group,omitempty"`
	// ICE: the source can be reached over WebRTC, through the gateway's signalling, when
	// its Addr cannot be dialled.
	ICE bool `json:"ice,omitempty"`
	// Cert is the fingerprint of the TLS certificate the source's neighbour port at Addr
	// serves (CertFingerprint): the only one a proxy dialling it accepts. Empty: plain HTTP.
	Cert string `json:"cert,omitempty"`
}

// StripePlan says where a member gets the segments of one stripe: from the gateway when it
// is a root, else from its sources, in order (then from the gateway, in time). A root with
// sources (a site's, see Feeders) tries them before the gateway.
type StripePlan struct {
	Root    bool     `json:"root,omitempty"`
	Sources []Source `json:"sources,omitempty"`
}

// Plan is a member's plan in one cell: one StripePlan per stripe.
type Plan struct {
	Rendition string       `json:"rendition"`
	Slot      int          `json:"slot"`
	Leech     bool         `json:"leech,omitempty"`
	Stripes   []StripePlan `json:"stripes"`
}

// StripeOf returns the stripe of the segment with media sequence number seq.
func StripeOf(seq uint64) int { return int(seq % Stripes) }

// Equal reports whether p and o say the same.
func (p Plan) Equal(o Plan) bool {
	return p.Rendition == o.Rendition && p.Slot == o.Slot && p.Leech == o.Leech &&
		slices.EqualFunc(p.Stripes, o.Stripes, func(a, b StripePlan) bool {
			return a.Root == b.Root && slices.Equal(a.Sources, b.Sources)
		})
}

// Roster is a cell's live members, indexed for planning.
type Roster struct {
	seeders   int
	uploaders map[int]Peer // by slot
	leeches   map[int]Peer // by leech slot
	lowest    [Stripes]int // the smallest live uploader slot of each class; -1 when none
	lowestAll int          // the smallest live uploader slot; -1 when none
}

// NewRoster indexes a cell's members; seeders is the number of roots per stripe (at least 1).
func NewRoster(members []Member, seeders int) *Roster {
	r := &Roster{seeders: max(seeders, 1), uploaders: map[int]Peer{}, leeches: map[int]Peer{}, lowestAll: -1}
	for i := range r.lowest {
		r.lowest[i] = -1
	}
	for _, m := range members {
		if m.Slot < 0 {
			continue
		}
		if m.Leech {
			r.leeches[m.Slot] = m.Peer
			continue
		}
		r.uploaders[m.Slot] = m.Peer
		if c := m.Slot % Stripes; r.lowest[c] < 0 || m.Slot < r.lowest[c] {
			r.lowest[c] = m.Slot
		}
		if r.lowestAll < 0 || m.Slot < r.lowestAll {
			r.lowestAll = m.Slot
		}
	}
	return r
}

// Len returns the number of members, uploaders and leeches.
func (r *Roster) Len() int { return len(r.uploaders) + len(r.leeches) }

// Plan returns the plan of the member at slot (of the leech space if leech) for rendition.
func (r *Roster) Plan(rendition string, slot int, leech bool) Plan {
	p := Plan{Rendition: rendition, Slot: slot, Leech: leech, Stripes: make([]StripePlan, Stripes)}
	for s := range Stripes {
		p.Stripes[s] = r.stripe(s, slot, leech)
	}
	return p
}

// stripe plans stripe s for the member at slot.
func (r *Roster) stripe(s, slot int, leech bool) StripePlan {
	var sp StripePlan
	j := slot / Stripes // the class index the walk starts from
	if leech {
		j = slot
	}
	interior := !leech && slot%Stripes == s
	switch {
	case interior:
		if j < r.seeders {
			return StripePlan{Root: true}
		}
		j = (j - r.seeders) / Fanout
	case !leech && s > slot%Stripes:
		// A leaf goes under a class-s member that came before it (a smaller slot, live
		// when a cell fills slot by slot): of its own class index for a smaller class, the
		// index before for a larger one. Under its own index's member, which joins after
		// it, each member's plan changed as the cell grew (about three plans per join),
		// and every change is new connections to set up. The first index has none before
		// it: its leaves are spread over the next indices' members, one each.
		if j > 0 {
			j--
		} else {
			j = slot%Stripes + 1
		}
	}
	for len(sp.Sources) < maxSources {
		if p, ok := r.uploaders[j*Stripes+s]; ok && (leech || j*Stripes+s != slot) {
			sp.Sources = append(sp.Sources, source(p))
		}
		if j < r.seeders {
			break
		}
		j = (j - r.seeders) / Fanout
	}
	if len(sp.Sources) > 0 {
		return sp
	}
	// No live ancestor: the acting root, the smallest live slot of class s (else of the
	// cell), is the source; it is its own root.
	acting := r.lowest[s]
	if acting < 0 {
		acting = r.lowestAll
	}
	if acting < 0 || (!leech && acting == slot) { // no uploader at all, or this one
		return StripePlan{Root: true}
	}
	sp.Sources = append(sp.Sources, source(r.uploaders[acting]))
	return sp
}

func source(p Peer) Source {
	return Source{ID: p.ID, Addr: p.Addr, Group: p.Group, ICE: p.ICE, Cert: p.Cert}
}

// Sites. A peer behind a symmetric NAT that neighbours cannot dial is planned in a cell of
// its site (Peer.Site): its site's peers reach it over their LAN, other sites' cannot. The
// roots of such a cell need not fetch from the gateway, though: they can dial the peers of
// their group that have an address (a public one, or a forwarded port), whose own segments
// come through the group's cell. Feeders picks, for each stripe, up to n of those for a
// site (by rendezvous hashing on the site and stripe, so that sites spread over them and a
// site keeps its feeders while they live); Plan.Fed gives them to the plan's roots, which
// try them before the gateway.

// MaxFeeders bounds the feeders of a stripe.
const MaxFeeders = 2

// Feeders returns, for each stripe, up to n (at most MaxFeeders) of the uploaders among
// members that neighbours can dial, for the cell of site.
func Feeders(members []Member, site string, n int) [Stripes][]Source {
	type ranked struct {
		rank uint64
		p    Peer
	}
	var out [Stripes][]Source
	n = min(n, MaxFeeders)
	for s := range out {
		var all []ranked
		for _, m := range members {
			if !m.Leech && m.Addr != "" && m.Site == "" {
				all = append(all, ranked{feedRank(site, s, m.ID), m.Peer})
			}
		}
		slices.SortFunc(all, func(a, b ranked) int { return cmp.Compare(b.rank, a.rank) })
		for _, r := range all[:min(len(all), n)] {
			out[s] = append(out[s], source(r.p))
		}
	}
	return out
}

// feedRank is id's rendezvous weight as a feeder of site's stripe s.
func feedRank(site string, s int, id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(site))
	_, _ = h.Write([]byte{'|', byte(s), '|'})
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

// Fed returns p with feeders as the sources of the stripes it is a root of.
func (p Plan) Fed(feeders [Stripes][]Source) Plan {
	stripes := slices.Clone(p.Stripes)
	for s := range stripes {
		if stripes[s].Root && s < len(feeders) && len(feeders[s]) > 0 {
			stripes[s].Sources = feeders[s]
		}
	}
	p.Stripes = stripes
	return p
}
