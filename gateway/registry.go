package gateway

import (
	"context"
	"time"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/gateway/tracker"
	"github.com/rawflow/rawflow/swarm"
)

// StatsStore keeps the channels' delivery counters: totals, and time buckets for the
// dashboard.
type StatsStore interface {
	AddStats(ctx context.Context, channel string, c swarm.Counters) error
	Stats(ctx context.Context, channel string) (swarm.ChannelStats, error)
	AddSample(ctx context.Context, channel string, at time.Time, s swarm.Sample) error
	Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]swarm.Bucket, error)
}

// Registry is the state a gateway shares with the rest of its fleet: what its tracker (the
// swarm's membership), its stats and its ingest (the fleet's timeline) each need.
// swarm.Memory (one gateway) and swarm.Redis (a fleet) implement it.
type Registry interface {
	tracker.Registry
	StatsStore
	ingest.Fleet
}

var (
	_ Registry = (*swarm.Memory)(nil)
	_ Registry = (*swarm.Redis)(nil)
)
