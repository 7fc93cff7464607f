package swarm

import (
	"strconv"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSeries: samples land in the 10 s and 1 min buckets of their time; breakdowns, feeds
// and viewer gauges read back; a coarser step merges buckets; two writers (two gateways on
// one store) add up.
func testSeries(e *env) {
	t0 := e.clock.Now().Truncate(time.Hour)
	other := e.newReg(e.t, Options{Now: e.clock.Now}) // a second gateway on the same store
	if _, ok := e.reg.(*Memory); ok {
		other = e.reg // a Memory registry is one gateway's own
	}
	add := func(reg Registry, at time.Time, s Sample) { require.NoError(e.t, reg.AddSample(e.ctx, e.ch, at, s)) }

	add(e.reg, t0.Add(1*time.Second), Sample{Group: "paris",
		Counters:   Counters{BytesFromGateway: 100, BytesFromPeers: 300, Stalls: 1, Startups: 2, StartupMillis: 900},
		Renditions: map[string]Counters{"r0": {BytesFromGateway: 100}, "r1": {BytesFromPeers: 300}},
		FedBy:      map[string]int64{"lyon": 200, "paris": 100}})
	add(other, t0.Add(5*time.Second), Sample{Group: "lyon", Counters: Counters{BytesFromPeers: 50}, FedBy: map[string]int64{"paris": 50}})
	add(e.reg, t0.Add(12*time.Second), Sample{Gateway: true, Counters: Counters{GatewayEgressBytes: 1000, PeersBanned: 1},
		Viewers: &Viewers{GatewayID: "gw1", Assisted: 7, Direct: 2}})
	add(other, t0.Add(13*time.Second), Sample{Gateway: true, Counters: Counters{GatewayEgressBytes: 500},
		Viewers: &Viewers{GatewayID: "gw2", Assisted: 7, Direct: 3}})
	add(e.reg, t0.Add(70*time.Second), Sample{Group: "paris", Counters: Counters{BytesFromGateway: 10}})

	bs, err := e.reg.Buckets(e.ctx, e.ch, t0, t0.Add(79*time.Second), BucketStep10)
	require.NoError(e.t, err)
	require.Len(e.t, bs, 8)
	assert.Equal(e.t, t0, bs[0].Start)
	first := bs[0]
	assert.Equal(e.t, Counters{BytesFromGateway: 100, BytesFromPeers: 350, Stalls: 1, Startups: 2, StartupMillis: 900}, first.Counters)
	assert.Equal(e.t, map[string]Counters{"r0": {BytesFromGateway: 100}, "r1": {BytesFromPeers: 300}}, first.Renditions)
	assert.Equal(e.t, Counters{BytesFromGateway: 100, BytesFromPeers: 300, Stalls: 1, Startups: 2, StartupMillis: 900}, first.Groups["paris"])
	assert.Equal(e.t, Counters{BytesFromPeers: 50}, first.Groups["lyon"])
	assert.Equal(e.t, []Feed{{"lyon", "paris", 200}, {"paris", "lyon", 50}, {"paris", "paris", 100}}, first.Feeds)
	second := bs[1]
	assert.Equal(e.t, Counters{GatewayEgressBytes: 1500, PeersBanned: 1}, second.Counters)
	assert.Empty(e.t, second.Groups, "a gateway's sample belongs to no group")
	assert.Equal(e.t, int64(7), second.ViewersAssisted)
	assert.Equal(e.t, int64(5), second.ViewersDirect, "each gateway's direct viewers add up")
	assert.True(e.t, bs[2].IsZero(), "a bucket without samples counts nothing")
	assert.Equal(e.t, int64(10), bs[7].BytesFromGateway)

	// One-minute step: the first minute holds the first four samples.
	bs, err = e.reg.Buckets(e.ctx, e.ch, t0, t0.Add(90*time.Second), time.Minute)
	require.NoError(e.t, err)
	require.Len(e.t, bs, 2)
	assert.Equal(e.t, Counters{BytesFromGateway: 100, BytesFromPeers: 350, Stalls: 1, Startups: 2, StartupMillis: 900,
		GatewayEgressBytes: 1500, PeersBanned: 1}, bs[0].Counters)
	assert.Equal(e.t, int64(5), bs[0].ViewersDirect)
	assert.Equal(e.t, int64(10), bs[1].BytesFromGateway)
	// Two minutes per step merge the 1 min buckets.
	bs, err = e.reg.Buckets(e.ctx, e.ch, t0, t0.Add(90*time.Second), 2*time.Minute)
	require.NoError(e.t, err)
	require.Len(e.t, bs, 1)
	assert.Equal(e.t, int64(110), bs[0].BytesFromGateway)

	for _, bad := range []time.Duration{0, 5 * time.Second, 90 * time.Second} {
		_, err = e.reg.Buckets(e.ctx, e.ch, t0, t0.Add(time.Hour), bad)
		assert.ErrorIs(e.t, err, ErrBadRequest, "step %v", bad)
	}
	_, err = e.reg.Buckets(e.ctx, e.ch, t0, t0.Add(30*24*time.Hour), BucketStep10)
	assert.ErrorIs(e.t, err, ErrBadRequest, "too many buckets")
	_, err = e.reg.Buckets(e.ctx, e.ch, t0, t0.Add(-time.Hour), BucketStep10)
	assert.ErrorIs(e.t, err, ErrBadRequest, "to before from")
	assert.ErrorIs(e.t, e.reg.AddSample(e.ctx, e.ch, t0, Sample{Group: "bad group"}), ErrBadRequest)
	assert.ErrorIs(e.t, e.reg.AddSample(e.ctx, e.ch, t0, Sample{Renditions: map[string]Counters{"x": {}}}), ErrBadRequest)
}

// testSeriesBounded: reporters choosing ever new group names fill a bucket up to its field
// bound, no further; the totals are still counted.
func testSeriesBounded(e *env) {
	t0 := e.clock.Now().Truncate(time.Hour)
	for i := range maxBucketFields + 50 {
		require.NoError(e.t, e.reg.AddSample(e.ctx, e.ch, t0, Sample{Group: "g" + itoa(i), Counters: Counters{BytesFromPeers: 1}}))
	}
	bs, err := e.reg.Buckets(e.ctx, e.ch, t0, t0, BucketStep10)
	require.NoError(e.t, err)
	assert.Equal(e.t, int64(maxBucketFields+50), bs[0].BytesFromPeers)
	assert.Less(e.t, len(bs[0].Groups), maxBucketFields)
}

func itoa(i int) string { return strconv.Itoa(i) }
