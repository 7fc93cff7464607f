package swarm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// members makes uploaders at the given slots, and leeches at the given leech slots.
func members(slots []int, leeches ...int) []Member {
	var ms []Member
	for _, s := range slots {
		ms = append(ms, Member{Peer: Peer{ID: fmt.Sprintf("%032x", s+1), Addr: fmt.Sprintf("10.0.%d.%d:7000", s/250, s%250)}, Slot: s})
	}
	for _, s := range leeches {
		ms = append(ms, Member{Peer: Peer{ID: fmt.Sprintf("%032x", 1_000_000+s), Leech: true}, Slot: s})
	}
	return ms
}

func compact(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// checkPlans checks what must hold of every roster's plans: per stripe, the roots number
// at least one and at most seeders+1 (the acting root), every chain of first sources ends at a root
// without a cycle, sources are live uploaders other than the member itself; and it returns
// the plans by member ID and the most children any member has in one stripe.
func checkPlans(t *testing.T, ms []Member, seeders int) (map[string]Plan, int) {
	t.Helper()
	r := NewRoster(ms, seeders)
	plans := map[string]Plan{}
	live := map[string]bool{}
	for _, m := range ms {
		plans[m.ID] = r.Plan("r0", m.Slot, m.Leech)
		if !m.Leech {
			live[m.ID] = true
		}
	}
	most := 0
	for s := range Stripes {
		roots, children := 0, map[string]int{}
		for _, m := range ms {
			sp := plans[m.ID].Stripes[s]
			if sp.Root {
				roots++
				assert.Empty(t, sp.Sources)
				continue
			}
			require.NotEmpty(t, sp.Sources, "member %d stripe %d: neither root nor sources", m.Slot, s)
			for _, src := range sp.Sources {
				assert.NotEqual(t, m.ID, src.ID, "a member is not its own source")
				assert.True(t, live[src.ID], "source %s is a live uploader", src.ID)
			}
			children[sp.Sources[0].ID]++
			id := m.ID
			for steps := 0; !plans[id].Stripes[s].Root; steps++ {
				require.Less(t, steps, len(ms), "stripe %d: a cycle from member %d", s, m.Slot)
				id = plans[id].Stripes[s].Sources[0].ID
			}
		}
		if len(live) > 0 {
			assert.GreaterOrEqual(t, roots, 1, "stripe %d", s)
			assert.LessOrEqual(t, roots, seeders+1, "stripe %d", s)
		}
		for _, n := range children {
			most = max(most, n)
		}
	}
	return plans, most
}

// depth is the longest chain of first sources in stripe s.
func depth(plans map[string]Plan, s int) int {
	deepest := 0
	for id := range plans {
		d := 0
		for !plans[id].Stripes[s].Root {
			id = plans[id].Stripes[s].Sources[0].ID
			d++
		}
		deepest = max(deepest, d)
	}
	return deepest
}

func TestPlanCompactCell(t *testing.T) {
	plans, most := checkPlans(t, members(compact(1000)), 1)
	assert.LessOrEqual(t, most, Fanout+Stripes, "children per member per stripe (Fanout+Stripes-1, one more for a few of the first)")
	for s := range Stripes {
		roots := 0
		for _, p := range plans {
			if p.Stripes[s].Root {
				roots++
			}
		}
		assert.Equal(t, 1, roots, "stripe %d: one gateway fetch per segment", s)
		assert.LessOrEqual(t, depth(plans, s), 6, "stripe %d: hops from the root", s)
	}
	// Every member is interior in one stripe and a leaf in the others: about one upload
	// per segment each, on average.
	p := plans[fmt.Sprintf("%032x", 6)] // slot 5: class 1, index 1
	assert.Equal(t, fmt.Sprintf("%032x", 2), p.Stripes[1].Sources[0].ID, "interior: the parent index (1-1)/4 = 0, slot 1")
	assert.Equal(t, fmt.Sprintf("%032x", 5), p.Stripes[0].Sources[0].ID, "leaf: the class-0 member of the same index, slot 4")
	assert.Equal(t, fmt.Sprintf("%032x", 3), p.Stripes[2].Sources[0].ID, "leaf: the class-2 member of the index before, slot 2")
}

// TestPlanGrowthKeepsPlans: a cell filling slot by slot, as a crowd joins, changes no plan
// of the members already there past the first index: each join costs one plan, the
// joiner's, and no proxy sets up connections to new sources because another joined.
func TestPlanGrowthKeepsPlans(t *testing.T) {
	for _, seeders := range []int{1, 2} {
		before := NewRoster(members(compact(Stripes)), seeders)
		for n := Stripes + 1; n <= 600; n++ {
			after := NewRoster(members(compact(n)), seeders)
			for slot := Stripes; slot < n-1; slot++ {
				require.True(t, before.Plan("r0", slot, false).Equal(after.Plan("r0", slot, false)),
					"seeders %d: slot %d's plan changed when slot %d joined", seeders, slot, n-1)
			}
			before = after
		}
	}
}

func TestPlanSmallAndSparseCells(t *testing.T) {
	for name, tc := range map[string]struct {
		slots, leeches []int
		seeders        int
	}{
		"one":              {slots: []int{0}},
		"two":              {slots: []int{0, 1}},
		"class 2 empty":    {slots: []int{0, 1, 3, 4, 5, 7}},
		"roots vacant":     {slots: []int{9, 14, 23, 40, 41, 42, 77}},
		"only leeches":     {leeches: []int{0, 1, 2}},
		"leeches":          {slots: compact(20), leeches: compact(30)},
		"two seeders":      {slots: compact(100), seeders: 2},
		"random sparse":    {slots: rand.Perm(400)[:150]},
		"one far away":     {slots: []int{1000}},
		"seeders vacant 3": {slots: []int{13, 50, 51, 52, 53}, seeders: 3},
	} {
		t.Run(name, func(t *testing.T) {
			checkPlans(t, members(tc.slots, tc.leeches...), max(tc.seeders, 1))
		})
	}
	plans, _ := checkPlans(t, members(nil, 0), 1)
	assert.True(t, plans[fmt.Sprintf("%032x", 1_000_000)].Stripes[0].Root, "a leech alone fetches for itself")
}

// TestPlanStableUnderChurn: a member leaving changes the plans of a bounded few members
// (its children and grandchildren), not of the cell: proxies keep their connections.
func TestPlanStableUnderChurn(t *testing.T) {
	ms := members(compact(1000))
	before, _ := checkPlans(t, ms, 1)
	for _, gone := range []int{0, 1, 77, 500, 999} {
		rest := append(append([]Member{}, ms[:gone]...), ms[gone+1:]...)
		after, _ := checkPlans(t, rest, 1)
		changed := 0
		for id, p := range after {
			if !p.Equal(before[id]) {
				changed++
			}
		}
		assert.LessOrEqual(t, changed, 2*(Fanout+Stripes)+Fanout*(Fanout+Stripes), "slot %d left: %d plans changed", gone, changed)
	}
}

// Feeders: only uploaders with an address, at most n per stripe, the same for a site from
// one call to the next, and spread over the candidates across sites.
func TestFeeders(t *testing.T) {
	var members []Member
	for i := range 8 {
		m := Member{Peer: Peer{ID: fmt.Sprintf("%032x", i), Addr: fmt.Sprintf("198.51.100.%d:8082", i+1)}, Slot: i}
		switch i {
		case 0:
			m.Addr = "" // WebRTC only
		case 1:
			m.Leech = true
		}
		members = append(members, m)
	}
	a := Feeders(members, "203.0.113.9", 5)
	assert.Equal(t, a, Feeders(slices.Clone(members), "203.0.113.9", 5), "stable")
	used := map[string]bool{}
	for s, srcs := range a {
		assert.Len(t, srcs, MaxFeeders, "stripe %d", s)
		for _, src := range srcs {
			assert.NotEqual(t, members[0].ID, src.ID, "no address: not a feeder")
			assert.NotEqual(t, members[1].ID, src.ID, "a leech: not a feeder")
			assert.NotEmpty(t, src.Addr)
		}
	}
	for i := range 20 {
		for _, srcs := range Feeders(members, fmt.Sprintf("203.0.113.%d", i), 1) {
			used[srcs[0].ID] = true
		}
	}
	assert.Greater(t, len(used), 3, "sites spread over the feeders")
	assert.Equal(t, [Stripes][]Source{}, Feeders(members[:2], "203.0.113.9", 2), "none with an address")

	p := Plan{Stripes: []StripePlan{{Root: true}, {Sources: []Source{{ID: "x"}}}, {Root: true}, {Root: true}}}
	f := p.Fed(a)
	assert.Equal(t, a[0], f.Stripes[0].Sources)
	assert.Equal(t, []Source{{ID: "x"}}, f.Stripes[1].Sources, "a member's sources stay")
	assert.Empty(t, p.Stripes[0].Sources, "p itself is left as it was")
}
