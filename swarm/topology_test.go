package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
)

// TestRedisClusterConformance runs the whole registry contract on a real three-master
// Redis Cluster: every multi-key transaction and script of a channel must stay in one slot
// (the {CH} hash tag), or Redis refuses it with CROSSSLOT.
func TestRedisClusterConformance(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	runConformance(t, func(t *testing.T, opts Options) Registry {
		r, err := OpenRedis(c.URL(), opts)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, r.Close()) })
		return r
	})
}

// TestRedisSentinelConformance runs the registry contract through a sentinel, then stops
// the master and checks that the registry works on the promoted replica.
func TestRedisSentinelConformance(t *testing.T) {
	st := redistest.StartSentinel(t)
	runConformance(t, func(t *testing.T, opts Options) Registry {
		r, err := OpenRedis(st.URL(), opts)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, r.Close()) })
		return r
	})

	t.Run("Failover", func(t *testing.T) {
		clock := newFakeClock()
		e := &env{t: t, ctx: t.Context(), clock: clock, reg: openRedis(t, st.URL(), clock.Now), ch: "failover"}
		a := e.joined(1)
		st.Master.Stop()
		st.WaitFailover(t)
		// The client learns the new master from the sentinel on its next connection; a call
		// in between may fail (ErrUnavailable, which proxies ride out by using the gateway).
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var err error
		for ctx.Err() == nil {
			if _, err = e.reg.Subscribe(ctx, a, []string{""}); err == nil {
				break
			}
			require.ErrorIs(t, err, ErrUnavailable)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		require.NoError(t, err, "no registry call succeeded after the failover")
		assert.Equal(t, map[string]int{a.ID: 0}, e.roster("", ""))
	})
}

// TestOpenRedisURLs checks the topology forms OpenRedis reads and the mistakes it refuses.
func TestOpenRedisURLs(t *testing.T) {
	for _, url := range []string{
		"redis://127.0.0.1:6379/0",
		"rediss://:pw@127.0.0.1:6379/2",
		"redis://127.0.0.1:26379/0?master_name=m&addr=127.0.0.1:26380&password=pw",
		"redis://127.0.0.1:7000?cluster=1&addr=127.0.0.1:7001",
		"redis://127.0.0.1:7000/0?cluster=true&dial_timeout=3s",
	} {
		r, err := OpenRedis(url, Options{})
		if assert.NoError(t, err, url) {
			assert.NoError(t, r.Close())
		}
	}
	for _, url := range []string{
		"http://127.0.0.1:6379",
		"redis://127.0.0.1:7000/3?cluster=1",
		"redis://127.0.0.1:7000?cluster=yes",
		"redis://127.0.0.1:7000?cluster=1&master_name=m",
		"redis://127.0.0.1:26379?master_name=",
		"redis://127.0.0.1:6379?no_such_option=1",
		"redis://127.0.0.1:7000?cluster=1&no_such_option=1",
	} {
		_, err := OpenRedis(url, Options{})
		assert.Error(t, err, url)
	}
}
