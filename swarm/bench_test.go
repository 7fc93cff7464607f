package swarm

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/rawflow/rawflow/internal/redistest"
)

// BenchmarkRegistry measures the tracker's registry operations on a cell of 1,000 peers, in
// memory and on a real redis-server; the Redis baseline is a
// PING on the same client, measured in the same run (the ratio is the cost of the
// operation in Redis round trips and server work).
//
//	go test -run '^$' -bench Registry -benchmem ./swarm/ | tee new.txt   (benchstat-friendly)
func BenchmarkRegistry(b *testing.B) {
	url := redistest.Start(b)
	for _, kind := range []string{"memory", "redis"} {
		var reg Registry
		switch kind {
		case "memory":
			reg = NewMemory(Options{})
		case "redis":
			r, err := OpenRedis(url, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = r.Close() })
			reg = r
			b.Run("redis/ping-baseline", func(b *testing.B) {
				ping := func(ctx context.Context) error { return r.client.Ping(ctx).Err() }
				benchOp(b, ping)
			})
		}
		ctx, ch := context.Background(), "bench-"+kind
		peers := make([]Peer, 1000)
		for i := range peers {
			peers[i] = Peer{ID: fmt.Sprintf("%032x", i+1), Channel: ch, Addr: fmt.Sprintf("192.0.2.%d:7000", i%250+1)}
			if _, err := reg.Subscribe(ctx, peers[i], []string{""}); err != nil {
				b.Fatal(err)
			}
		}
		ids := make([]string, len(peers))
		for i, p := range peers {
			ids[i] = p.ID
		}
		var seq atomic.Int64 // spreads the operations over the peers
		b.Run(kind+"/subscribe", func(b *testing.B) {
			benchOp(b, func(ctx context.Context) error {
				_, err := reg.Subscribe(ctx, peers[int(seq.Add(1))%len(peers)], []string{""})
				return err
			})
		})
		b.Run(kind+"/refresh-1000", func(b *testing.B) {
			benchOp(b, func(ctx context.Context) error { return reg.Refresh(ctx, ch, ids) })
		})
		b.Run(kind+"/roster-1000", func(b *testing.B) {
			benchOp(b, func(ctx context.Context) error { _, err := reg.Roster(ctx, ch, "", ""); return err })
		})
		b.Run(kind+"/stats", func(b *testing.B) {
			benchOp(b, func(ctx context.Context) error { _, err := reg.Stats(ctx, ch); return err })
		})
	}
}

// benchOp runs op b.N times from 8 goroutines per CPU: the throughput a gateway's tracker
// sees from many proxies at once.
func benchOp(b *testing.B, op func(context.Context) error) {
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
