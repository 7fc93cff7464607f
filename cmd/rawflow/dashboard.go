package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/swarm"
	"github.com/rawflow/rawflow/web"
)

// dashboardStats is what the dashboard (web.Stats) reads of a gateway: its channels, and
// their stats in the registry it shares with its fleet. A name that is not one of the
// gateway's channels is web.ErrUnknownChannel, never a registry read.
type dashboardStats struct {
	gw  *gateway.Server
	reg gateway.StatsStore
}

var _ web.Stats = dashboardStats{}

func (d dashboardStats) Channels() []string { return d.gw.Channels() }

func (d dashboardStats) Totals(ctx context.Context, channel string) (swarm.ChannelStats, error) {
	if err := d.known(channel); err != nil {
		return swarm.ChannelStats{}, err
	}
	return d.reg.Stats(ctx, channel)
}

func (d dashboardStats) Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]swarm.Bucket, error) {
	if err := d.known(channel); err != nil {
		return nil, err
	}
	return d.reg.Buckets(ctx, channel, from, to, step)
}

func (d dashboardStats) known(channel string) error {
	if !slices.Contains(d.gw.Channels(), channel) {
		return fmt.Errorf("%w %q", web.ErrUnknownChannel, channel)
	}
	return nil
}
