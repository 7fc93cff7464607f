package gateway

import (
	"context"
	"time"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/swarm"
)

// Tracker is the swarm's membership as the tracker API keeps it: live peers, what they
// hold, and who fetches each segment from the gateway (see swarm.Memory for the semantics).
type Tracker interface {
	Join(ctx context.Context, p swarm.Peer) error
	Peer(ctx context.Context, channel, id string) (p swarm.Peer, ok bool, err error)
	Leave(ctx context.Context, channel, id string) error
	Have(ctx context.Context, channel, id string, digests []string) error
	Lookup(ctx context.Context, channel, digest string, asker swarm.Peer, q swarm.LookupQuery) (holders []swarm.Holder, elected bool, err error)
}

// StatsStore keeps the channels' delivery counters: totals, and time buckets for the
// dashboard.
type StatsStore interface {
	AddStats(ctx context.Context, channel string, c swarm.Counters) error
	Stats(ctx context.Context, channel string) (swarm.ChannelStats, error)
	AddSample(ctx context.Context, channel string, at time.Time, s swarm.Sample) error
	Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]swarm.Bucket, error)
}

// Registry is the state a gateway shares with the rest of its fleet: what its tracker, its
// stats and its ingest (the fleet's timeline) each need. swarm.Memory (one gateway) and
// swarm.Redis (a fleet) implement it.
type Registry interface {
	Tracker
	StatsStore
	ingest.Fleet
}

var (
	_ Registry = (*swarm.Memory)(nil)
	_ Registry = (*swarm.Redis)(nil)
)
