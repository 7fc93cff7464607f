package swarm

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReportStatsValidation(t *testing.T) {
	ok := ReportRequest{Channel: "tv", PeerID: peerID(1), Token: "1-ab",
		Stats:      Counters{BytesFromPeers: 10, Stalls: 1, Startups: 1, StartupMillis: 300},
		Renditions: map[string]Counters{"r0": {BytesFromPeers: 10}},
		FedBy:      map[string]int64{"lyon": 10}}
	assert.NoError(t, ok.Validate())
	many := map[string]int64{}
	for i := range MaxFedBy + 1 {
		many["g"+strconv.Itoa(i)] = 1
	}
	for name, mutate := range map[string]func(r *ReportRequest){
		"negative":           func(r *ReportRequest) { r.Stats.Stalls = -1 },
		"gateway egress":     func(r *ReportRequest) { r.Stats.GatewayEgressBytes = 1 },
		"bans":               func(r *ReportRequest) { r.Stats.PeersBanned = 1 },
		"bad rendition":      func(r *ReportRequest) { r.Renditions = map[string]Counters{"../x": {}} },
		"negative rendition": func(r *ReportRequest) { r.Renditions = map[string]Counters{"r1": {BytesFromPeers: -5}} },
		"bad fed_by group":   func(r *ReportRequest) { r.FedBy = map[string]int64{"a b": 1} },
		"negative fed_by":    func(r *ReportRequest) { r.FedBy = map[string]int64{"x": -1} },
		"too many fed_by":    func(r *ReportRequest) { r.FedBy = many },
		"tracker refusals":   func(r *ReportRequest) { r.Stats.TrackerRefused = 1 },
		"bad banned id":      func(r *ReportRequest) { r.Banned = []string{"x"} },
		"bad peer id":        func(r *ReportRequest) { r.PeerID = "x" },
	} {
		r := ok
		mutate(&r)
		assert.ErrorIs(t, r.Validate(), ErrBadRequest, name)
	}
}

// TestConfirmedOffload: peer bytes count as far as uploads corroborate them; the rest is
// shown apart.
func TestConfirmedOffload(t *testing.T) {
	honest := Counters{BytesFromPeers: 900, BytesUploaded: 950, BytesFromGateway: 100}
	assert.InDelta(t, 0.9, honest.ConfirmedOffload(), 1e-9)
	assert.Zero(t, honest.UnconfirmedPeerBytes())
	inflated := Counters{BytesFromPeers: 1e15, BytesUploaded: 950, BytesFromGateway: 100}
	assert.InDelta(t, 950.0/1050, inflated.ConfirmedOffload(), 1e-9)
	assert.Equal(t, int64(1e15-950), inflated.UnconfirmedPeerBytes())
}
