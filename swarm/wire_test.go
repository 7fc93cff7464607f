package swarm

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAnnounceStatsValidation(t *testing.T) {
	ok := AnnounceRequest{Channel: "tv", Addr: "127.0.0.1:9000", Group: "paris",
		Stats:      Counters{BytesFromPeers: 10, Stalls: 1, Startups: 1, StartupMillis: 300},
		Renditions: map[string]Counters{"r0": {BytesFromPeers: 10}},
		FedBy:      map[string]int64{"lyon": 10}}
	assert.NoError(t, ok.Validate())
	many := map[string]int64{}
	for i := range MaxFedBy + 1 {
		many["g"+strconv.Itoa(i)] = 1
	}
	for name, mutate := range map[string]func(r *AnnounceRequest){
		"negative":             func(r *AnnounceRequest) { r.Stats.Stalls = -1 },
		"gateway egress":       func(r *AnnounceRequest) { r.Stats.GatewayEgressBytes = 1 },
		"bans":                 func(r *AnnounceRequest) { r.Stats.PeersBanned = 1 },
		"bad rendition":        func(r *AnnounceRequest) { r.Renditions = map[string]Counters{"../x": {}} },
		"negative rendition":   func(r *AnnounceRequest) { r.Renditions = map[string]Counters{"r1": {BytesFromPeers: -5}} },
		"bad fed_by group":     func(r *AnnounceRequest) { r.FedBy = map[string]int64{"a b": 1} },
		"negative fed_by":      func(r *AnnounceRequest) { r.FedBy = map[string]int64{"x": -1} },
		"too many fed_by":      func(r *AnnounceRequest) { r.FedBy = many },
		"leech negative stats": func(r *AnnounceRequest) { r.Leech, r.Stats.BytesFromPeers = true, -1 },
	} {
		r := ok
		mutate(&r)
		assert.ErrorIs(t, r.Validate(), ErrBadRequest, name)
	}
}
