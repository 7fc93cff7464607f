package swarm

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// reverse is a deterministic stand-in for rand.Shuffle: it reverses the bucket.
func reverse(n int, swap func(i, j int)) {
	for i := 0; i < n/2; i++ {
		swap(i, n-1-i)
	}
}

func holder(id, addr, group, publicIP string, state HolderState) Holder {
	return Holder{Peer: Peer{ID: id, Addr: addr, Group: group, PublicIP: publicIP}, State: state}
}

func ids(hs []Holder) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.ID)
	}
	return out
}

func TestRank(t *testing.T) {
	asker := Peer{ID: "me", Addr: "10.0.0.5:7000", Group: "site-a", PublicIP: "203.0.113.9"}
	other := holder("other", "192.0.2.1:7000", "", "198.51.100.1", StateHave)
	group := holder("group", "192.0.2.2:7000", "site-a", "198.51.100.2", StateHave)
	sameIP := holder("ip", "192.0.2.3:7000", "site-b", "203.0.113.9", StateHave)
	sameNet := holder("net", "10.0.0.77:7000", "", "198.51.100.4", StateHave)
	fetching := holder("fetching", "192.0.2.5:7000", "site-a", "", StateFetching)
	leech := holder("leech", "10.0.0.6:7000", "site-a", "203.0.113.9", StateHave)
	leech.Leech = true
	self := holder("me", "10.0.0.5:7000", "site-a", "203.0.113.9", StateHave)

	tests := []struct {
		name    string
		asker   Peer
		holders []Holder
		limit   int
		shuffle func(n int, swap func(i, j int))
		want    []string
	}{
		{"empty", asker, nil, 5, nil, []string{}},
		{"tiers", asker, []Holder{other, sameNet, sameIP, group}, 10, nil,
			[]string{"group", "ip", "net", "other"}},
		{"have before fetching in a tier", asker, []Holder{fetching, group}, 10, nil,
			[]string{"group", "fetching"}},
		{"fetching in a better tier beats have in a worse", asker, []Holder{other, fetching}, 10, nil,
			[]string{"fetching", "other"}},
		{"drops asker and leeches", asker, []Holder{self, leech, other}, 10, nil,
			[]string{"other"}},
		{"limit truncates", asker, []Holder{other, sameNet, sameIP, group}, 2, nil,
			[]string{"group", "ip"}},
		{"limit below one means one", asker, []Holder{other, group}, 0, nil,
			[]string{"group"}},
		{"empty group matches nothing", Peer{ID: "me"}, []Holder{holder("a", "", "", "", StateHave)}, 5, nil,
			[]string{"a"}},
		{"shuffle within a tier only", asker, []Holder{
			holder("o1", "192.0.2.9:1", "", "", StateHave), group,
			holder("o2", "192.0.2.8:1", "", "", StateHave),
			holder("g2", "", "site-a", "", StateHave),
		}, 10, reverse, []string{"g2", "group", "o2", "o1"}},
		{"network from PublicIP when Addr host empty", Peer{ID: "me", Addr: ":7000", PublicIP: "10.1.2.3"},
			[]Holder{other, holder("n", "10.1.2.200:1", "", "", StateHave)}, 10, nil,
			[]string{"n", "other"}},
		{"ipv6 /64", Peer{ID: "me", Addr: "[2001:db8:1:2::1]:7000"},
			[]Holder{holder("far", "[2001:db8:1:3::1]:1", "", "", StateHave),
				holder("near", "[2001:db8:1:2:ffff::9]:1", "", "", StateHave)}, 10, nil,
			[]string{"near", "far"}},
		{"unspecified host is no network", Peer{ID: "me", Addr: "0.0.0.0:7000"},
			[]Holder{holder("a", "0.0.0.1:1", "", "", StateHave), holder("b", "0.0.0.0:1", "", "", StateHave)}, 10, nil,
			[]string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Rank(tc.asker, tc.holders, tc.limit, tc.shuffle)
			assert.Equal(t, tc.want, ids(got))
		})
	}
}

func TestRankClampsToMaxLookupLimit(t *testing.T) {
	hs := make([]Holder, 2*MaxLookupLimit)
	for i := range hs {
		hs[i] = holder(string(rune('A'+i)), "", "", "", StateHave)
	}
	assert.Len(t, Rank(Peer{ID: "me"}, hs, 1000, nil), MaxLookupLimit)
}

func TestRankDoesNotModifyInput(t *testing.T) {
	in := []Holder{
		holder("o", "192.0.2.1:1", "", "", StateHave),
		holder("g", "", "x", "", StateHave),
	}
	Rank(Peer{ID: "me", Group: "x"}, in, 10, reverse)
	assert.Equal(t, []string{"o", "g"}, ids(in))
}
