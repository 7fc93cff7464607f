package peerassist

// Reports: what the member tells the gateway every report interval (counter deltas, the
// neighbours it caught) and when it leaves.

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// report queues a neighbour caught sending bad bytes for the next report.
func (m *member) report(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.banned) < swarm.MaxBannedReports && !slices.Contains(m.banned, id) && swarm.ValidPeerID(id) {
		m.banned = append(m.banned, id)
	}
}

// reportInterval is how often the member reports (10 s until the gateway says).
func (m *member) reportInterval() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cmp.Or(m.reportEvery, 10*time.Second)
}

var errNotJoined = errors.New("not joined")

// sendReport sends the counters not yet accepted, and their breakdowns by rendition and by
// feeding group, with the neighbours caught since the last report; leave ends the
// membership. On failure the deltas stay pending: nothing is lost, they go with the next.
func (m *member) sendReport(ctx context.Context, p *Proxy, leave bool) error {
	snap, renditions, fedBy, paths := m.stats.pending()
	m.mu.Lock()
	delta := snap
	delta.Sub(m.reported)
	req := swarm.ReportRequest{PeerID: m.id, Token: m.peerToken, Channel: m.channel, Stats: delta,
		Banned: slices.Clone(m.banned), Renditions: renditions, FedBy: fedBy, Paths: paths, Leave: leave}
	m.mu.Unlock()
	if req.PeerID == "" {
		return errNotJoined
	}
	m.stats.trackerRequests.Add(1)
	err := p.tracker.Report(ctx, req)
	switch {
	case errors.Is(err, swarm.ErrUnauthorized):
		p.log.Info("the gateway no longer knows this peer; joining afresh", "channel", m.channel)
		m.forget()
		m.signal()
		return err
	case errors.Is(err, swarm.ErrRefused):
		m.stats.trackerRefused.Add(1)
		return err
	case err != nil:
		p.log.Debug("report failed", "channel", m.channel, "err", err)
		return err
	}
	m.mu.Lock()
	m.reported.Add(delta)
	m.banned = slices.Delete(m.banned, 0, len(req.Banned))
	m.mu.Unlock()
	m.stats.accepted(renditions, fedBy, paths)
	return nil
}

// leave sends the counters not yet reported, with the leave, bounded to a second on a
// context of its own (the member's has ended), and marks the member stopped.
func (m *member) leave(ctx context.Context, p *Proxy) {
	m.mu.Lock()
	m.running = false
	m.mu.Unlock()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = m.sendReport(lctx, p, true)
}
