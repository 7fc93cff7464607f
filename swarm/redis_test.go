package swarm

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
)

// openRedis returns a registry on url, closed when t ends.
func openRedis(t *testing.T, url string, now func() time.Time) *Redis {
	r, err := OpenRedis(url, Options{Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.Close()) })
	return r
}

func TestRedisConformance(t *testing.T) {
	url := redistest.Start(t)
	runConformance(t, func(t *testing.T, opts Options) Registry {
		r, err := OpenRedis(url, opts)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, r.Close()) })
		return r
	})
}

// TestRedisUnavailable checks that a Redis outage shows as ErrUnavailable and that the
// registry works again, scripts included, once Redis is back (empty: nothing persisted).
func TestRedisUnavailable(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := newFakeClock()
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: openRedis(t, srv.URL(), clock.Now), ch: "outage"}
	a := e.joined(1)

	srv.Stop()
	_, subscribeErr := e.reg.Subscribe(e.ctx, a, []string{""})
	_, rosterErr := e.reg.Roster(e.ctx, e.ch, "", "")
	_, statsErr := e.reg.Stats(e.ctx, e.ch)
	for name, err := range map[string]error{
		"subscribe": subscribeErr,
		"roster":    rosterErr,
		"refresh":   e.reg.Refresh(e.ctx, e.ch, []string{a.ID}),
		"leave":     e.reg.Leave(e.ctx, e.ch, a.ID),
		"addstats":  e.reg.AddStats(e.ctx, e.ch, Counters{BytesUploaded: 1}),
		"stats":     statsErr,
	} {
		assert.ErrorIs(t, err, ErrUnavailable, name)
	}

	srv.Start()
	e.join(a)
	assert.Equal(t, map[string]int{a.ID: 0}, e.roster("", ""))
	assert.Equal(t, 1, e.activePeers())
}

// TestRedisKeyLayout checks the documented keys, their hash tag and their GC expiry.
func TestRedisKeyLayout(t *testing.T) {
	url := redistest.Start(t)
	clock := newFakeClock()
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: openRedis(t, url, clock.Now), ch: "layout"}
	a := e.peer(1)
	a.Group = "paris"
	e.subscribe(a, "r0")
	b := e.peer(2)
	b.Leech = true
	e.subscribe(b, "r0")
	e.subscribe(e.peer(3), "r1")
	require.NoError(t, e.reg.Leave(e.ctx, e.ch, peerID(3)))
	require.NoError(t, e.reg.AddStats(e.ctx, e.ch, Counters{BytesUploaded: 1}))
	_, err := e.reg.List(e.ctx, e.ch, "r1", ListClaim{Digest: digest(4)})
	require.NoError(t, err)

	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opts)
	defer c.Close()
	keys, err := c.Keys(e.ctx, "*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"rawflow:{layout}:peers", "rawflow:{layout}:peerinfo", "rawflow:{layout}:stats",
		"rawflow:{layout}:cell:u:r0:paris", "rawflow:{layout}:cell:l:r0:",
		"rawflow:{layout}:cell:u:r1:", "rawflow:{layout}:free:u:r1:",
		"rawflow:{layout}:timeline:r1", "rawflow:{layout}:listing:r1", "rawflow:{layout}:listinfo:r1",
	}, keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "rawflow:{layout}:timeline") {
			continue // it must outlive gateway restarts
		}
		ttl, err := c.PTTL(e.ctx, k).Result()
		require.NoError(t, err)
		assert.Positive(t, ttl, "%s has a GC expiry", k)
	}
}

// TestRedisRefreshKeepsGCExpiry: a channel whose peers are only refreshed (nobody joined
// for a while) keeps its peers and peerinfo keys: each Refresh pushes their GC expiry back.
// Before, both expired gcTTL after the last Subscribe, and the whole swarm fell out of its
// cells at once.
func TestRedisRefreshKeepsGCExpiry(t *testing.T) {
	url := redistest.Start(t)
	clock := newFakeClock()
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: openRedis(t, url, clock.Now), ch: "refresh"}
	var ids []string
	for i := range 3 {
		ids = append(ids, e.joined(i).ID)
	}
	before := e.roster("", "")

	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opts)
	defer c.Close()
	keys := []string{peersKey(e.ch), peerInfoKey(e.ch)}
	for _, k := range keys { // as if the last Subscribe were long ago
		require.NoError(t, c.PExpire(e.ctx, k, 5*time.Second).Err())
	}
	require.NoError(t, e.reg.Refresh(e.ctx, e.ch, ids))
	for _, k := range keys {
		ttl, err := c.PTTL(e.ctx, k).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, gcTTL(DefaultPeerTTL)-5*time.Second, "%s: Refresh pushes its GC expiry back", k)
	}
	assert.Equal(t, before, e.roster("", ""), "the members keep their slots")
}

// TestRedisPrunesOnWrite checks that expired peers do not pile up in a channel that keeps
// being written to, and that their slots are freed.
func TestRedisPrunesOnWrite(t *testing.T) {
	url := redistest.Start(t)
	clock := newFakeClock()
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: openRedis(t, url, clock.Now), ch: "prune"}
	for i := range 20 {
		e.joined(i)
	}
	clock.Advance(DefaultPeerTTL)
	assert.Empty(t, e.roster("", ""), "a roster frees the slots of expired members")
	a := e.joined(100)
	assert.Equal(t, map[string]int{a.ID: 0}, e.roster("", ""), "the lowest freed slot")

	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opts)
	defer c.Close()
	n, err := c.ZCard(e.ctx, peersKey(e.ch)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "expired peers dropped")
	n, err = c.HLen(e.ctx, peerInfoKey(e.ch)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "peerinfo of expired peers dropped")
	slots, _ := cellKeys(e.ch, cellKey{})
	n, err = c.HLen(e.ctx, slots).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "one member and #next")
}

// TestRedisAuthAndTLS: a Redis that takes only TLS and a password is reached with a
// rediss:// URL carrying the password and a CA file; without either, calls fail as
// ErrUnavailable (and the registry says so rather than hanging).
func TestRedisAuthAndTLS(t *testing.T) {
	srv := redistest.StartSecure(t)
	ctx := t.Context()
	p := Peer{ID: peerID(1), Channel: "secure", Addr: "192.0.2.1:7000"}

	r, err := OpenRedis(srv.URL(), Options{TLSCAFile: srv.CAFile()})
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Subscribe(ctx, p, []string{""})
	require.NoError(t, err)
	got, ok, err := r.Peer(ctx, "secure", p.ID)
	require.NoError(t, err)
	require.True(t, ok)
	p.Renditions = []string{""}
	assert.Equal(t, p, got)

	noPassword := strings.Replace(srv.URL(), ":"+srv.Password()+"@", "", 1)
	plain := strings.Replace(srv.URL(), "rediss://", "redis://", 1)
	for name, tc := range map[string]struct {
		url string
		ca  string
	}{
		"wrong password": {strings.Replace(srv.URL(), srv.Password(), "wrong", 1), srv.CAFile()},
		"no password":    {noPassword, srv.CAFile()},
		"untrusted cert": {srv.URL(), ""},
		"plain to TLS":   {plain, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r, oerr := OpenRedis(tc.url, Options{TLSCAFile: tc.ca})
			require.NoError(t, oerr)
			defer r.Close()
			_, oerr = r.Subscribe(ctx, p, []string{""})
			assert.ErrorIs(t, oerr, ErrUnavailable)
		})
	}
	_, err = OpenRedis(plain, Options{TLSCAFile: srv.CAFile()})
	assert.Error(t, err, "a CA file with a plain URL is a mistake")
	_, err = OpenRedis(srv.URL(), Options{TLSCAFile: "/nonexistent.pem"})
	assert.Error(t, err)
}
