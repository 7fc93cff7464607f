package peerassist

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// assertSplitsAddUp checks that an announce's breakdowns split its totals exactly.
func assertSplitsAddUp(t *testing.T, req swarm.ReportRequest) {
	t.Helper()
	var sum swarm.Counters
	for _, c := range req.Renditions {
		sum.Add(c)
	}
	assert.Equal(t, swarm.Counters{BytesFromGateway: req.Stats.BytesFromGateway, BytesFromPeers: req.Stats.BytesFromPeers,
		SegmentsFromGateway: req.Stats.SegmentsFromGateway, SegmentsFromPeers: req.Stats.SegmentsFromPeers}, sum, "renditions add up to the totals")
	var fed int64
	for _, n := range req.FedBy {
		fed += n
	}
	assert.Equal(t, req.Stats.BytesFromPeers, fed, "fed_by adds up to the peer bytes")
}

func (g *fakeGateway) setFailReports(fail bool) { g.mu.Lock(); g.failReports = fail; g.mu.Unlock() }

// TestReportSplitsByRendition: a multivariant channel's deliveries (gateway, a grouped
// neighbour, a pass-through, a key) are reported split by rendition and by feeding group;
// deltas a failed report carried go with the next one, once.
func TestReportSplitsByRendition(t *testing.T) {
	gw := newFakeGateway(0)
	gw.multivariant = []byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nr0/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1600000\nr1/index.m3u8\n")
	gw.addRendition("r0", 2)
	gw.addRendition("r1", 2)
	gw.data["r1/extra.ts"] = []byte(strings.Repeat("x", 777)) // listed nowhere: passed through
	gw.data["r1/k.key"] = make([]byte, 16)                    // a key: not media, not counted
	byDigest := map[string][]byte{}
	for _, b := range gw.data {
		byDigest[playlist.Sum(b).String()] = b
	}
	lyon := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(byDigest[strings.TrimPrefix(r.URL.Path, swarm.NeighbourSegmentPath)])
	})
	p := startProxy(t, gw, nil)
	m := p.member("tv")
	get := func(path string) {
		t.Helper()
		resp, _ := httpGet(t, p.player.URL+"/live/tv/"+path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	get("r0/index.m3u8")
	get("r1/index.m3u8")
	p.waitPlan(t, "r1", func(swarm.Plan) bool { return true })
	p.waitPlan(t, "r0", func(swarm.Plan) bool { return true })
	r0, r1 := gw.renditions["r0"].Segments, gw.renditions["r1"].Segments
	get("r0/" + r0[0].Name) // root: from the gateway
	get("r0/" + r0[1].Name)
	lyonID := strings.Repeat("b", 32)
	gw.setSources(swarm.Source{ID: lyonID, Addr: lyon, Group: "lyon"})
	p.waitPlan(t, "r1", fromSource(lyonID))
	get("r1/" + r1[0].Name) // from a neighbour of group lyon
	get("r1/extra.ts")
	get("r1/k.key")

	joined := len(gw.reported())
	want := map[string]swarm.Counters{
		"r0": {BytesFromGateway: r0[0].Size + r0[1].Size, SegmentsFromGateway: 2},
		"r1": {BytesFromGateway: 777, SegmentsFromGateway: 1, BytesFromPeers: r1[0].Size, SegmentsFromPeers: 1},
	}
	gw.setFailReports(true)
	assert.Error(t, m.sendReport(t.Context(), p.Proxy, false), "failed: the deltas stay pending")
	failed := gw.reported()[joined]
	assert.Equal(t, want, failed.Renditions)
	assert.Equal(t, map[string]int64{"lyon": r1[0].Size}, failed.FedBy)
	assert.Equal(t, map[string]int64{"direct": r1[0].Size}, failed.Paths, "over TCP to its neighbour port")
	assertSplitsAddUp(t, failed)

	get("r1/" + r1[1].Name) // while those deltas are pending
	gw.setFailReports(false)
	require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
	accepted := gw.reported()[joined+1]
	w1 := want["r1"]
	w1.BytesFromPeers += r1[1].Size
	w1.SegmentsFromPeers++
	want["r1"] = w1
	assert.Equal(t, want, accepted.Renditions, "the failed announce's deltas, once, and the new ones")
	assert.Equal(t, map[string]int64{"lyon": r1[0].Size + r1[1].Size}, accepted.FedBy)
	assert.Equal(t, map[string]int64{"direct": r1[0].Size + r1[1].Size}, accepted.Paths)
	assertSplitsAddUp(t, accepted)

	require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
	last := gw.reported()[joined+2]
	assert.True(t, last.Stats.IsZero(), "nothing new: %+v", last.Stats)
	assert.Empty(t, last.Renditions)
	assert.Empty(t, last.FedBy)
	assert.Empty(t, last.Paths)

	// What the gateway accepted is what the proxy counted, nothing twice.
	var sum swarm.Counters
	for i, req := range gw.reported() {
		if i != joined {
			sum.Add(req.Stats)
		}
	}
	assert.Equal(t, p.Status().Channels["tv"].Counters, sum)
	assert.Equal(t, r0[0].Size+r0[1].Size+777, sum.BytesFromGateway)
}

// TestFedByBounded: peer bytes are reported by the group of the neighbour that sent them,
// "" for ungrouped ones; only the first MaxFedBy groups of a period (and only names the
// gateway accepts) are in the breakdown, while the totals count every byte.
func TestFedByBounded(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	m := p.member("tv")
	joined := len(gw.reported())
	m.stats.got(delivery{peers: 1000})
	m.stats.got(delivery{peers: 5, group: "not a group"}) // the gateway would refuse the announce
	total := int64(1000)
	for i := range 20 {
		m.stats.got(delivery{peers: int64(100 + i), group: fmt.Sprintf("g%02d", i)})
		total += int64(100 + i)
	}
	m.stats.got(delivery{peers: 7, group: "g00"})
	total += 12
	require.NoError(t, m.sendReport(t.Context(), p.Proxy, false), "accepted: the breakdown is valid")
	req := gw.reported()[joined]
	want := map[string]int64{"": 1000, "g00": 107}
	for i := 1; i < swarm.MaxFedBy-1; i++ {
		want[fmt.Sprintf("g%02d", i)] = int64(100 + i)
	}
	assert.Equal(t, want, req.FedBy, "the first MaxFedBy groups seen")
	assert.Equal(t, total, req.Stats.BytesFromPeers, "the totals count every byte")
	assert.Equal(t, int64(23), req.Stats.SegmentsFromPeers)

	// A new period: room for other groups again.
	m.stats.got(delivery{peers: 50, group: "g19"})
	require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
	assert.Equal(t, map[string]int64{"g19": 50}, gw.reported()[joined+1].FedBy)
}

// TestRenditionsBounded: an announce carries at most MaxReportRenditions renditions, those
// pending longest; the others go with the next ones. Past maxRenditions pending, a
// rendition is left out of the breakdown (not out of the totals).
func TestRenditionsBounded(t *testing.T) {
	gw := newFakeGateway(1)
	p := startProxy(t, gw, nil)
	m := p.member("tv")
	joined := len(gw.reported())
	for i := range maxRenditions + 6 {
		m.stats.got(delivery{rendition: fmt.Sprintf("r%d", i), gateway: 10})
	}
	seen := map[string]bool{}
	var split swarm.Counters
	for k := range maxRenditions/swarm.MaxReportRenditions + 1 {
		require.NoError(t, m.sendReport(t.Context(), p.Proxy, false))
		req := gw.reported()[joined+k]
		assert.LessOrEqual(t, len(req.Renditions), swarm.MaxReportRenditions)
		for r, c := range req.Renditions {
			assert.False(t, seen[r], "%s reported twice", r)
			seen[r] = true
			split.Add(c)
		}
		if k == 0 {
			assert.Equal(t, int64(10*(maxRenditions+6)), req.Stats.BytesFromGateway)
			for i := range swarm.MaxReportRenditions {
				assert.Contains(t, req.Renditions, fmt.Sprintf("r%d", i), "the longest pending first")
			}
		}
	}
	assert.Len(t, seen, maxRenditions)
	assert.Equal(t, swarm.Counters{BytesFromGateway: 10 * maxRenditions, SegmentsFromGateway: maxRenditions}, split)
}

// TestFedByRangeCompletion: the bytes a neighbour sent before it stalled, which the gateway
// then completed, count as fed by the neighbour's group; the segment is the gateway's.
func TestFedByRangeCompletion(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	addr := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(gw.data[seg.Name][:1000])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	gw.setSources(swarm.Source{ID: strings.Repeat("c", 32), Addr: addr, Group: "lyon"})
	p := startProxy(t, gw, nil)
	joined := len(gw.reported())
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, string(gw.data[seg.Name]), body)
	require.Equal(t, int64(1), p.Status().Channels["tv"].RangeCompletions)

	require.NoError(t, p.member("tv").sendReport(t.Context(), p.Proxy, false))
	req := gw.reported()[joined]
	assert.Equal(t, map[string]int64{"lyon": 1000}, req.FedBy)
	assert.Equal(t, map[string]swarm.Counters{"": {BytesFromPeers: 1000, BytesFromGateway: seg.Size - 1000, SegmentsFromGateway: 1}}, req.Renditions)
	assertSplitsAddUp(t, req)
}
