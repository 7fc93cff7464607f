package swarm

import (
	"context"
	"time"
)

// memSeries is one channel's buckets in memory: bucket start (unix seconds) -> fields, for
// each width.
type memSeries struct {
	b10, b60  map[int64]map[string]int64
	nextPrune time.Time // prune does nothing before this
}

// prune drops the buckets past retention (what Redis's PEXPIRE does), at most once per
// 10 s step: a scan of every bucket on every sample would be a hot path under the lock.
func (ms *memSeries) prune(now time.Time) {
	if now.Before(ms.nextPrune) {
		return
	}
	ms.nextPrune = now.Add(BucketStep10)
	for _, w := range []struct {
		buckets map[int64]map[string]int64
		ttl     time.Duration
	}{{ms.b10, BucketRetention10}, {ms.b60, BucketRetention60}} {
		oldest := now.Add(-w.ttl).Unix()
		for t := range w.buckets {
			if t < oldest {
				delete(w.buckets, t)
			}
		}
	}
}

// AddSample adds s to the 10 s and 1 min buckets of at.
func (m *Memory) AddSample(_ context.Context, channel string, at time.Time, s Sample) error {
	if err := checkSample(channel, s); err != nil {
		return err
	}
	incr, set := encodeSample(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	ch := m.channel(channel, now.UnixMilli())
	if ch.series == nil {
		ch.series = &memSeries{b10: map[int64]map[string]int64{}, b60: map[int64]map[string]int64{}}
	}
	ch.series.prune(now)
	for _, w := range []struct {
		buckets   map[int64]map[string]int64
		step, ttl time.Duration
	}{{ch.series.b10, BucketStep10, BucketRetention10}, {ch.series.b60, BucketStep60, BucketRetention60}} {
		oldest := now.Add(-w.ttl).Unix()
		key := at.Truncate(w.step).Unix()
		if key < oldest {
			continue
		}
		b := w.buckets[key]
		if b == nil {
			b = map[string]int64{}
			w.buckets[key] = b
		}
		for f, v := range incr {
			if _, ok := b[f]; ok || len(b) < maxBucketFields {
				b[f] = SatAdd(b[f], v)
			}
		}
		for f, v := range set {
			if _, ok := b[f]; ok || len(b) < maxBucketFields {
				b[f] = v
			}
		}
	}
	return nil
}

// Buckets returns the channel's stats from from to to, one Bucket per step (10 s, or a
// multiple of a minute), oldest first; steps with nothing recorded are zero.
func (m *Memory) Buckets(_ context.Context, channel string, from, to time.Time, step time.Duration) ([]Bucket, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	stored, starts, err := bucketPlan(from, to, step)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var buckets map[int64]map[string]int64
	if ch := m.channels[channel]; ch != nil && ch.series != nil {
		buckets = ch.series.b10
		if stored == BucketStep60 {
			buckets = ch.series.b60
		}
	}
	out := make([]Bucket, len(starts))
	for i, start := range starts {
		out[i] = Bucket{Start: start}
		for t := start; t.Before(start.Add(step)); t = t.Add(stored) {
			if fields := buckets[t.Unix()]; fields != nil {
				out[i].Merge(decodeBucket(t, fields))
			}
		}
	}
	return out, nil
}
