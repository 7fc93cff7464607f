package web_test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rawflow/rawflow/swarm"
	"github.com/rawflow/rawflow/web"
)

// fakeStats is a web.Stats of made-up, live-looking figures for two channels: radio (one
// media playlist, ungrouped peers, no feeds) and tv (two renditions, three groups, five
// feeds). The rates follow a slow wave, bytes_saved grows every 10 s, and nothing is
// recorded before the last six hours. The dashboard's real handlers compute the API from it.
type fakeStats struct{}

// fixture is one channel's figures: per 10 s step (before the wave) unless said otherwise.
type fixture struct {
	activePeers                   int
	bytesSaved                    int64 // at time 0; 1 MB more every 10 s, wrapping at 100
	gatewayBytes, peerBytes       int64
	viewersDirect                 int64
	startupMillis                 int64 // the mean of one startup per step
	stalls, failures, peersBanned int64 // per minute, all in its first 10 s step
	renditions, groups            map[string]float64
	feeds                         map[[2]string]float64 // from, to: shares of the peer bytes
	paths                         map[[2]string]float64 // path, group: shares of the peer bytes
}

var fixtures = map[string]fixture{
	"radio": {activePeers: 3, bytesSaved: 4_400_000, gatewayBytes: 500_000, peerBytes: 150_000, viewersDirect: 2,
		startupMillis: 420, renditions: map[string]float64{"": 1}, groups: map[string]float64{"": 1}},
	"tv": {activePeers: 41, bytesSaved: 117_700_000, gatewayBytes: 112_500, peerBytes: 1_562_500, viewersDirect: 4,
		startupMillis: 812, stalls: 3, failures: 1, peersBanned: 1,
		renditions: map[string]float64{"r0": 0.75, "r1": 0.25},
		groups:     map[string]float64{"paris": 0.5, "lyon": 0.35, "": 0.15},
		feeds: map[[2]string]float64{{"paris", "paris"}: 0.45, {"paris", "lyon"}: 0.1, {"lyon", "lyon"}: 0.24,
			{"", "paris"}: 0.14, {"paris", ""}: 0.07},
		paths: map[[2]string]float64{{"direct", "paris"}: 0.4, {"srflx", "paris"}: 0.1, {"host", "lyon"}: 0.3, {"relay", ""}: 0.2}},
}

func (fakeStats) Channels() []string {
	names := make([]string, 0, len(fixtures))
	for name := range fixtures {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (fakeStats) Totals(_ context.Context, channel string) (swarm.ChannelStats, error) {
	fx, ok := fixtures[channel]
	if !ok {
		return swarm.ChannelStats{}, fmt.Errorf("%w %q", web.ErrUnknownChannel, channel)
	}
	saved := fx.bytesSaved + time.Now().Unix()/10%100*1_000_000
	return swarm.ChannelStats{ActivePeers: fx.activePeers, Counters: swarm.Counters{BytesFromPeers: saved, BytesUploaded: saved}}, nil
}

// Buckets makes up the buckets of the range, aligned on step as the registries align them.
func (fakeStats) Buckets(_ context.Context, channel string, from, to time.Time, step time.Duration) ([]swarm.Bucket, error) {
	fx, ok := fixtures[channel]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w %q", web.ErrUnknownChannel, channel)
	case step != swarm.BucketStep10 && (step < time.Minute || step%time.Minute != 0):
		return nil, fmt.Errorf("step %v: want 10s or a multiple of 1m", step)
	case to.Sub(from)/step > swarm.MaxBuckets:
		return nil, fmt.Errorf("range %v at step %v: too many buckets", to.Sub(from), step)
	}
	var out []swarm.Bucket
	for t := from.Truncate(step); !t.After(to); t = t.Add(step) {
		out = append(out, fx.bucket(t, step))
	}
	return out, nil
}

// bucket is the fixture's bucket of the step that starts at t.
func (fx fixture) bucket(t time.Time, step time.Duration) swarm.Bucket {
	b := swarm.Bucket{Start: t}
	if t.Before(time.Now().Add(-6 * time.Hour)) {
		return b
	}
	steps := float64(step / swarm.BucketStep10)
	wave := 1 + 0.3*math.Sin(float64(t.Unix())/600)
	gw, peer := float64(fx.gatewayBytes)*steps*(2-wave), float64(fx.peerBytes)*steps*wave
	perMinute := func(n int64) int64 { // a minute's events, in the first 10 s step of each
		if step == swarm.BucketStep10 {
			if t.Unix()/10%6 == 0 {
				return n
			}
			return 0
		}
		return n * int64(step/time.Minute)
	}
	b.Counters = swarm.Counters{GatewayEgressBytes: int64(gw), BytesFromGateway: int64(gw), BytesFromPeers: int64(peer),
		BytesUploaded: int64(peer), Startups: int64(steps), StartupMillis: int64(float64(fx.startupMillis) * steps * (2 - wave)),
		Stalls: perMinute(fx.stalls), IntegrityFailures: perMinute(fx.failures), PeersBanned: perMinute(fx.peersBanned)}
	b.ViewersAssisted = int64(math.Round(float64(fx.activePeers) * wave))
	b.ViewersDirect = fx.viewersDirect
	b.Renditions, b.Groups = map[string]swarm.Counters{}, map[string]swarm.Counters{}
	for name, share := range fx.renditions {
		b.Renditions[name] = swarm.Counters{GatewayEgressBytes: int64(gw * share), BytesFromGateway: int64(gw * share), BytesFromPeers: int64(peer * share)}
	}
	for name, share := range fx.groups {
		b.Groups[name] = swarm.Counters{BytesFromGateway: int64(gw * share), BytesFromPeers: int64(peer * share)}
	}
	for ft, share := range fx.feeds {
		b.Feeds = append(b.Feeds, swarm.Feed{From: ft[0], To: ft[1], Bytes: int64(peer * share)})
	}
	slices.SortFunc(b.Feeds, func(x, y swarm.Feed) int { return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To)) })
	for pg, share := range fx.paths {
		b.Paths = append(b.Paths, swarm.PathBytes{Path: pg[0], Group: pg[1], Bytes: int64(peer * share)})
	}
	slices.SortFunc(b.Paths, func(x, y swarm.PathBytes) int {
		return cmp.Or(cmp.Compare(x.Group, y.Group), cmp.Compare(x.Path, y.Path))
	})
	return b
}
