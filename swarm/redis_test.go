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
	e.have(a, digest(1))
	e.lookup(digest(1), e.peer(2), 5)

	srv.Stop()
	_, _, lookupErr := e.reg.Lookup(e.ctx, e.ch, digest(1), e.peer(2), LookupQuery{Limit: 5})
	_, statsErr := e.reg.Stats(e.ctx, e.ch)
	for name, err := range map[string]error{
		"join":     e.reg.Join(e.ctx, a),
		"have":     e.reg.Have(e.ctx, e.ch, a.ID, []string{digest(1)}),
		"lookup":   lookupErr,
		"leave":    e.reg.Leave(e.ctx, e.ch, a.ID),
		"addstats": e.reg.AddStats(e.ctx, e.ch, Counters{BytesUploaded: 1}),
		"stats":    statsErr,
	} {
		assert.ErrorIs(t, err, ErrUnavailable, name)
	}

	srv.Start()
	e.join(a)
	e.have(a, digest(1))
	hs, elected := e.lookup(digest(1), e.peer(2), 5)
	assert.False(t, elected)
	assert.Equal(t, map[string]HolderState{a.ID: StateHave}, states(hs))
	assert.Equal(t, 1, e.activePeers())
}

// TestRedisKeyLayout checks the documented keys, their hash tag and their GC expiry.
func TestRedisKeyLayout(t *testing.T) {
	url := redistest.Start(t)
	clock := newFakeClock()
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: openRedis(t, url, clock.Now), ch: "layout"}
	a := e.joined(1)
	e.have(a, digest(1))
	e.lookup(digest(2), a, 5)
	e.seek(digest(3), a)
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
		"rawflow:{layout}:peers", "rawflow:{layout}:peerinfo",
		"rawflow:{layout}:have:" + digest(1), "rawflow:{layout}:held:" + peerID(1),
		"rawflow:{layout}:fetch:" + digest(2), "rawflow:{layout}:stats",
		"rawflow:{layout}:group:", "rawflow:{layout}:seed:" + digest(3) + ":",
		"rawflow:{layout}:fetch:" + digest(3),
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

// TestRedisPrunesOnWrite checks that expired peers and holdings do not pile up in a
// channel that keeps being written to.
func TestRedisPrunesOnWrite(t *testing.T) {
	url := redistest.Start(t)
	clock := newFakeClock()
	e := &env{t: t, ctx: t.Context(), clock: clock, reg: openRedis(t, url, clock.Now), ch: "prune"}
	for i := range 20 {
		e.have(e.joined(i), digest(1))
	}
	clock.Advance(DefaultHoldTTL)
	a := e.joined(100)
	e.have(a, digest(1))

	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opts)
	defer c.Close()
	for key, want := range map[string]int64{
		peersKey(e.ch):              1,
		haveKey(e.ch, digest(1)):    1,
		heldKey(e.ch, a.ID):         1,
		heldKey(e.ch, peerID(0)):    1, // untouched since; left to its GC expiry
		fetchKey(e.ch, digest(999)): 0,
	} {
		n, err := c.ZCard(e.ctx, key).Result()
		require.NoError(t, err)
		assert.Equal(t, want, n, key)
	}
	n, err := c.HLen(e.ctx, peerInfoKey(e.ch)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "peerinfo of expired peers dropped")
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
	require.NoError(t, r.Join(ctx, p))
	got, ok, err := r.Peer(ctx, "secure", p.ID)
	require.NoError(t, err)
	require.True(t, ok)
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
			r, err := OpenRedis(tc.url, Options{TLSCAFile: tc.ca})
			require.NoError(t, err)
			defer r.Close()
			assert.ErrorIs(t, r.Join(ctx, p), ErrUnavailable)
		})
	}
	_, err = OpenRedis(plain, Options{TLSCAFile: srv.CAFile()})
	assert.Error(t, err, "a CA file with a plain URL is a mistake")
	_, err = OpenRedis(srv.URL(), Options{TLSCAFile: "/nonexistent.pem"})
	assert.Error(t, err)
}
