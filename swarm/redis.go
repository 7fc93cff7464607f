package swarm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the registry kept in Redis, shared by a fleet of gateways; it behaves as Memory
// does (the conformance suite checks both). The key layout is
// described in keys.go. Every error from Redis wraps ErrUnavailable.
type Redis struct {
	client redis.UniversalClient
	opts   Options
}

// Client settings of OpenRedis: the registry sits on the request path, so a Redis that is
// down must fail fast and let callers fall back to the gateway.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 1 * time.Second
	redisPoolSize    = 16
	redisMaxRetries  = 1
)

// NewRedis returns a registry on client; zero fields of opts take their defaults. Close
// closes client.
func NewRedis(client redis.UniversalClient, opts Options) *Redis {
	setLogger()
	return &Redis{client: client, opts: opts.WithDefaults()}
}

// OpenRedis connects to Redis at url, in one of three topologies (rediss:// for TLS in
// each, trusting opts.TLSCAFile when set):
//
//	redis://[[USER]:PASSWORD@]HOST:PORT[/DB]                            one server
//	redis://[[USER]:PASSWORD@]HOST:PORT[/DB]?master_name=NAME[&addr=HOST:PORT…][&password=P]
//	                                           Sentinel: HOST:PORT and each addr are sentinels,
//	                                           the userinfo is theirs, password= the master's
//	redis://[[USER]:PASSWORD@]HOST:PORT?cluster=1[&addr=HOST:PORT…]     Cluster: seed nodes
//
// Other query parameters are go-redis's (redis.ParseURL, ParseFailoverURL, ParseClusterURL).
// Timeouts, pool size and retries default to the fail-fast values above unless the URL sets
// them. It does not dial: a Redis that is down shows as ErrUnavailable on the first call.
func OpenRedis(url string, opts Options) (*Redis, error) {
	client, err := openClient(url, opts.TLSCAFile)
	if err != nil {
		return nil, err
	}
	return NewRedis(client, opts), nil
}

// openClient parses url as OpenRedis describes and returns the client for its topology.
func openClient(rawURL, caFile string) (redis.UniversalClient, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("swarm: redis url: %w", err)
	}
	q := u.Query()
	switch {
	case q.Has("cluster") && q.Has("master_name"):
		return nil, errors.New("swarm: redis url: cluster and master_name (Sentinel) exclude each other")
	case q.Has("cluster"):
		if v := q.Get("cluster"); v != "1" && v != "true" {
			return nil, fmt.Errorf("swarm: redis url: cluster=%q, want cluster=1", v)
		}
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, fmt.Errorf("swarm: redis url: a Redis Cluster has only database 0, not /%s", p)
		}
		q.Del("cluster")
		u.RawQuery, u.Path = q.Encode(), ""
		o, perr := redis.ParseClusterURL(u.String())
		if perr != nil {
			return nil, fmt.Errorf("swarm: redis cluster url: %w", perr)
		}
		if err = trustCA(o.TLSConfig, caFile); err != nil {
			return nil, err
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolSize, &o.MaxRetries, &o.DialerRetries)
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	case q.Has("master_name"):
		o, perr := redis.ParseFailoverURL(rawURL)
		if perr != nil {
			return nil, fmt.Errorf("swarm: redis sentinel url: %w", perr)
		}
		if o.MasterName == "" {
			return nil, errors.New("swarm: redis sentinel url: master_name is empty")
		}
		if err = trustCA(o.TLSConfig, caFile); err != nil {
			return nil, err
		}
		failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolSize, &o.MaxRetries, &o.DialerRetries)
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("swarm: redis url: %w", err)
	}
	if err := trustCA(o.TLSConfig, caFile); err != nil {
		return nil, err
	}
	failFast(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolSize, &o.MaxRetries, &o.DialerRetries)
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), nil
}

// trustCA makes cfg trust only the certificates in caFile; "" leaves cfg alone. A CA file
// with a plain redis:// URL (cfg nil) is an error: the user meant TLS.
func trustCA(cfg *tls.Config, caFile string) error {
	if caFile == "" {
		return nil
	}
	if cfg == nil {
		return errors.New("swarm: a CA file is for rediss:// URLs, not redis://")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("swarm: redis CA file: %w", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return fmt.Errorf("swarm: redis CA file %s: no PEM certificate", caFile)
	}
	return nil
}

// failFast gives the client settings the URL left unset their fail-fast values.
func failFast(dial, read, write *time.Duration, pool, retries, dialRetries *int) {
	setIfZero(dial, redisDialTimeout)
	setIfZero(read, redisIOTimeout)
	setIfZero(write, redisIOTimeout)
	setIfZero(pool, redisPoolSize)
	setIfZero(retries, redisMaxRetries)
	setIfZero(dialRetries, 1)
}

func setIfZero[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// unavailable wraps a Redis error so that errors.Is(err, ErrUnavailable) holds.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (r *Redis) now() int64 { return r.opts.Now().UnixMilli() }

func expiryMS(now int64, ttl time.Duration) int64 { return now + ttl.Milliseconds() }

// flag is a boolean as a script argument.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Peer returns the live peer id of channel, in one pipeline.
func (r *Redis) Peer(ctx context.Context, channel, id string) (Peer, bool, error) {
	if err := checkChannelPeer(channel, id); err != nil {
		return Peer{}, false, err
	}
	var exp *redis.FloatCmd
	var info *redis.StringCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		exp = p.ZScore(ctx, peersKey(channel), id)
		info = p.HGet(ctx, peerInfoKey(channel), id)
		return nil
	})
	if errors.Is(err, redis.Nil) || (err == nil && int64(exp.Val()) <= r.now()) {
		return Peer{}, false, nil
	}
	if err != nil {
		return Peer{}, false, unavailable(err)
	}
	var p Peer
	ok := json.Unmarshal([]byte(info.Val()), &p) == nil // else not written by Subscribe
	return p, ok, nil
}

// Leave removes the peer and frees its slots at once.
func (r *Redis) Leave(ctx context.Context, channel, id string) error {
	if err := checkChannelPeer(channel, id); err != nil {
		return err
	}
	info, err := r.client.HGet(ctx, peerInfoKey(channel), id).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return unavailable(err)
	}
	var peer Peer
	_ = json.Unmarshal([]byte(info), &peer) // unknown peer: no cells to leave
	peer.ID, peer.Channel = id, channel
	if err = r.leaveCells(ctx, peer); err != nil {
		return err
	}
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, peersKey(channel), id)
		p.HDel(ctx, peerInfoKey(channel), id)
		return nil
	})
	return unavailable(err)
}

// satIncr is a Lua function: satincr(key, field, delta) adds delta to a hash field,
// saturating at ±MaxCounter (2^53: Lua numbers are doubles, exact up to there), so no
// increment ever fails or wraps.
const satIncr = `
local function satincr(key, f, v)
  local cap = 9007199254740992
  local cur = tonumber(redis.call('HGET', key, f) or '0') or 0
  local d = tonumber(v) or 0
  if d > 0 then
    if cur >= cap then d = 0 elseif d > cap - cur then d = cap - cur end
  elseif d < 0 then
    if cur <= -cap then d = 0 elseif d < -cap - cur then d = -cap - cur end
  end
  if d ~= 0 then redis.call('HINCRBY', key, f, string.format('%d', d)) end
end
`

// addStatsScript adds the deltas ARGV (field, delta pairs) to the stats hash KEYS[1], each
// saturating (satIncr), all or nothing, then sets its PEXPIRE to ARGV[1] ms.
var addStatsScript = redis.NewScript(satIncr + `
for i = 2, #ARGV, 2 do
  satincr(KEYS[1], ARGV[i], ARGV[i+1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`)

// AddStats adds the delta c to the channel's counters in one script: atomic, each counter
// saturating at ±MaxCounter.
func (r *Redis) AddStats(ctx context.Context, channel string, c Counters) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if c.IsZero() {
		return nil
	}
	args := []any{statsGC.Milliseconds()}
	for _, f := range counterFields(&c) {
		if *f.ptr != 0 {
			args = append(args, f.name, min(max(*f.ptr, -MaxCounter), MaxCounter))
		}
	}
	return unavailable(addStatsScript.Run(ctx, r.client, []string{statsKey(channel)}, args...).Err())
}

// Stats returns the channel's counters and active peer count, in one pipeline.
func (r *Redis) Stats(ctx context.Context, channel string) (ChannelStats, error) {
	if err := checkChannel(channel); err != nil {
		return ChannelStats{}, err
	}
	var all *redis.MapStringStringCmd
	var active *redis.IntCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, statsKey(channel))
		active = p.ZCount(ctx, peersKey(channel), "("+strconv.FormatInt(r.now(), 10), "+inf")
		return nil
	})
	if err != nil {
		return ChannelStats{}, unavailable(err)
	}
	st := ChannelStats{ActivePeers: int(active.Val())}
	for _, f := range counterFields(&st.Counters) {
		// A field that does not parse was not written by AddStats: read it as zero.
		*f.ptr, _ = strconv.ParseInt(all.Val()[f.name], 10, 64)
	}
	return st, nil
}

// Close closes the Redis client.
func (r *Redis) Close() error { return r.client.Close() }

// saveTimeline sets each field of the timeline hash to the larger of its value and the
// argument's, in one atomic step. KEYS[1] timeline; ARGV field, value pairs.
var saveTimeline = redis.NewScript(`
for i = 1, #ARGV, 2 do
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i+1]) > old then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
end
return 1`)

// LoadTimeline is Memory.LoadTimeline on Redis.
func (r *Redis) LoadTimeline(ctx context.Context, channel, rendition string) (Timeline, bool, error) {
	if err := checkStream(channel, rendition); err != nil {
		return Timeline{}, false, err
	}
	vals, err := r.client.HGetAll(ctx, timelineKey(channel, rendition)).Result()
	if err != nil {
		return Timeline{}, false, unavailable(err)
	}
	if len(vals) == 0 {
		return Timeline{}, false, nil
	}
	var t Timeline
	t.NextSeq, _ = strconv.ParseUint(vals["next_seq"], 10, 64)
	// disc_seq is saved by SaveTimeline, last_dseq by List: the same figure, the larger counts.
	t.DiscSeq, _ = strconv.ParseUint(vals["disc_seq"], 10, 64)
	if last, err := strconv.ParseUint(vals["last_dseq"], 10, 64); err == nil {
		t.DiscSeq = max(t.DiscSeq, last)
	}
	t.TargetDuration, _ = strconv.Atoi(vals["target_duration"])
	return t, true, nil
}

// SaveTimeline is Memory.SaveTimeline on Redis.
func (r *Redis) SaveTimeline(ctx context.Context, channel, rendition string, t Timeline) error {
	if err := checkStream(channel, rendition); err != nil {
		return err
	}
	err := saveTimeline.Run(ctx, r.client, []string{timelineKey(channel, rendition)},
		"next_seq", t.NextSeq, "disc_seq", t.DiscSeq, "target_duration", t.TargetDuration).Err()
	return unavailable(err)
}

// listScript is List. KEYS: timeline, listing (ZSET digest -> seq), listinfo
// (HASH digest -> "DISC DISCSEQ LISTEDMS"). ARGV: digest, disc (0/1), min seq, keep
// (MaxListings), gc ms (listingsGC), now ms, max age ms (0: any), max behind (0: any),
// min disc seq, target duration. The timeline's next_seq becomes the new listing's seq + 1,
// last_dseq its DiscSeq, and target_duration is set if it was not.
var listScript = redis.NewScript(`
local nextseq = tonumber(redis.call('HGET', KEYS[1], 'next_seq') or '0')
local seq = redis.call('ZSCORE', KEYS[2], ARGV[1])
if seq then
  local info = redis.call('HGET', KEYS[3], ARGV[1]) or '0 0 0'
  local at = tonumber(string.match(info, '^%d+ %d+ (%d+)$') or '0')
  local young = tonumber(ARGV[7]) <= 0 or tonumber(ARGV[6]) - at <= tonumber(ARGV[7])
  local near = tonumber(ARGV[8]) <= 0 or tonumber(seq) + tonumber(ARGV[8]) >= nextseq
  if young and near then
    return {seq, info}
  end
end
local n = math.max(nextseq, tonumber(ARGV[3]))
local dseq = math.max(tonumber(redis.call('HGET', KEYS[1], 'last_dseq') or '0') + tonumber(ARGV[2]), tonumber(ARGV[9]))
if tonumber(ARGV[10]) > 0 then redis.call('HSETNX', KEYS[1], 'target_duration', ARGV[10]) end
local info = ARGV[2] .. ' ' .. string.format('%d', dseq) .. ' ' .. ARGV[6]
redis.call('ZADD', KEYS[2], n, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], info)
redis.call('HSET', KEYS[1], 'next_seq', string.format('%d', n + 1), 'last_dseq', string.format('%d', dseq))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if extra > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], extra)
  for i = 1, #old, 2 do redis.call('HDEL', KEYS[3], old[i]) end
end
return {string.format('%d', n), info}
`)

// List is Memory.List on Redis: one script, in the channel's slot.
func (r *Redis) List(ctx context.Context, channel, rendition string, c ListClaim) (Listing, error) {
	if err := checkStream(channel, rendition); err != nil {
		return Listing{}, err
	}
	if !ValidDigest(c.Digest) {
		return Listing{}, badf("digest %q: want 64 lower-case hex digits", c.Digest)
	}
	res, err := listScript.Run(ctx, r.client, []string{timelineKey(channel, rendition),
		listingKey(channel, rendition), listInfoKey(channel, rendition)},
		c.Digest, flag(c.Disc), c.MinSeq, MaxListings, listingsGC.Milliseconds(), r.now(), c.MaxAge.Milliseconds(), c.MaxBehind,
		c.MinDiscSeq, c.TargetDuration).StringSlice()
	if err != nil {
		return Listing{}, unavailable(err)
	}
	var l Listing
	var disc int
	if len(res) != 2 {
		return Listing{}, unavailable(fmt.Errorf("list script answered %q", res))
	}
	l.Seq, err = strconv.ParseUint(res[0], 10, 64)
	if _, err2 := fmt.Sscanf(res[1], "%d %d", &disc, &l.DiscSeq); err != nil || err2 != nil { // then the time
		return Listing{}, unavailable(fmt.Errorf("list script answered %q", res))
	}
	l.Disc = disc == 1
	return l, nil
}

// redisLog routes go-redis's own messages (pool dial failures while Redis is away, one per
// attempt) to slog at debug level: callers already see ErrUnavailable, and the messages
// otherwise go straight to stderr, past --log-level.
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// setLogger sends go-redis's own log lines to slog at debug level, once per process.
var setLogger = sync.OnceFunc(func() { redis.SetLogger(redisLog{}) })
