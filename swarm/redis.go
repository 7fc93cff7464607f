package swarm

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Registry kept in Redis, shared by a fleet of gateways. The key layout is
// described in keys.go. Every error from Redis wraps ErrUnavailable.
type Redis struct {
	client redis.UniversalClient
	opts   Options
}

var _ Registry = (*Redis)(nil)

// Client settings of OpenRedis: the registry sits on the request path, so a Redis that is
// down must fail fast and let callers fall back to the gateway.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 1 * time.Second
	redisPoolSize    = 16
	redisMaxRetries  = 1
)

// maxLeaveHoldings bounds the holdings one Leave removes; any beyond it are never returned
// while the peer is gone, and expire after HoldTTL.
const maxLeaveHoldings = 1024

// NewRedis returns a registry on client; zero fields of opts take their defaults. Close
// closes client.
func NewRedis(client redis.UniversalClient, opts Options) *Redis {
	return &Redis{client: client, opts: opts.WithDefaults()}
}

// OpenRedis connects to the Redis at url (redis:// or rediss://, as redis.ParseURL reads
// it) with short timeouts. It does not dial: a Redis that is down shows as ErrUnavailable
// on the first call.
func OpenRedis(url string, opts Options) (*Redis, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("swarm: redis url: %w", err)
	}
	o.DialTimeout = redisDialTimeout
	o.ReadTimeout = redisIOTimeout
	o.WriteTimeout = redisIOTimeout
	o.PoolSize = redisPoolSize
	o.MaxRetries = redisMaxRetries
	o.DialerRetries = 1
	o.ContextTimeoutEnabled = true
	return NewRedis(redis.NewClient(o), opts), nil
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

// joinScript drops up to ARGV[5] expired peers, then registers one.
// KEYS: peers, peerinfo. ARGV: now, expiry, id, peer JSON, prune batch, gc ms.
var joinScript = redis.NewScript(`
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[5])
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 0
`)

// Join registers p, or refreshes it, until PeerTTL from now.
func (r *Redis) Join(ctx context.Context, p Peer) error {
	if err := checkChannelPeer(p.Channel, p.ID); err != nil {
		return err
	}
	info, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("swarm: encode peer: %w", err)
	}
	now := r.now()
	keys := []string{peersKey(p.Channel), peerInfoKey(p.Channel)}
	err = joinScript.Run(ctx, r.client, keys, now, expiryMS(now, r.opts.PeerTTL), p.ID, info,
		maxPruneBatch, gcTTL(r.opts.PeerTTL).Milliseconds()).Err()
	return unavailable(err)
}

// Leave removes the peer, its holdings and its fetch claims on them at once.
func (r *Redis) Leave(ctx context.Context, channel, id string) error {
	if err := checkChannelPeer(channel, id); err != nil {
		return err
	}
	held, err := r.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: heldKey(channel, id), Start: "-inf", Stop: "+inf", ByScore: true, Count: maxLeaveHoldings,
	}).Result()
	if err != nil {
		return unavailable(err)
	}
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, peersKey(channel), id)
		p.HDel(ctx, peerInfoKey(channel), id)
		p.Del(ctx, heldKey(channel, id))
		for _, d := range held {
			p.ZRem(ctx, haveKey(channel, d), id)
			p.ZRem(ctx, fetchKey(channel, d), id)
		}
		return nil
	})
	return unavailable(err)
}

// Have records that peer id holds the digests until HoldTTL from now, replacing its fetch
// claims on them. It is one MULTI/EXEC.
func (r *Redis) Have(ctx context.Context, channel, id string, digests []string) error {
	if err := (HaveRequest{PeerID: id, Channel: channel, Digests: digests}).Validate(); err != nil {
		return err
	}
	now := r.now()
	exp := expiryMS(now, r.opts.HoldTTL)
	gc := gcTTL(r.opts.HoldTTL)
	past := strconv.FormatInt(now, 10)
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		held := heldKey(channel, id)
		p.ZRemRangeByScore(ctx, held, "-inf", past)
		for _, d := range digests {
			have := haveKey(channel, d)
			p.ZRemRangeByScore(ctx, have, "-inf", past)
			p.ZAdd(ctx, have, redis.Z{Score: float64(exp), Member: id})
			p.PExpire(ctx, have, gc)
			p.ZRem(ctx, fetchKey(channel, d), id)
			p.ZAdd(ctx, held, redis.Z{Score: float64(exp), Member: d})
		}
		p.PExpire(ctx, held, gc)
		return nil
	})
	return unavailable(err)
}

// lookupScript prunes the digest's expired holdings and claims, reads the freshest live
// holders other than the asker (have first; a peer in both counts as have), and claims the
// fetch for the asker when there are none and it is not a leech. It returns
// {elected (0 or 1), state, peer JSON, state, peer JSON, ...}.
// KEYS: have, fetch, peers, peerinfo. ARGV: now, fetch expiry, asker id, asker leech (0/1),
// read limit, fetch gc ms.
var lookupScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local out, seen, budget = {0}, {}, tonumber(ARGV[5])
local function collect(key, state)
  if budget <= 0 then return end
  local ids = redis.call('ZREVRANGEBYSCORE', key, '+inf', '(' .. ARGV[1], 'LIMIT', 0, budget)
  budget = budget - #ids
  for _, id in ipairs(ids) do
    if id ~= ARGV[3] and not seen[id] then
      seen[id] = true
      local exp = redis.call('ZSCORE', KEYS[3], id)
      local info = redis.call('HGET', KEYS[4], id)
      if exp and tonumber(exp) > now and info then
        local ok, p = pcall(cjson.decode, info)
        if ok and p.leech ~= true then
          out[#out + 1] = state
          out[#out + 1] = info
        end
      end
    end
  end
end
collect(KEYS[1], 'have')
collect(KEYS[2], 'fetching')
if #out == 1 and ARGV[4] == '0' then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  out[1] = 1
end
return out
`)

// Lookup returns up to limit live holders of digest other than asker, ranked by Rank, and
// elects asker to fetch it when nobody else holds or fetches it. It is one script call.
func (r *Redis) Lookup(ctx context.Context, channel, digest string, asker Peer, limit int) ([]Holder, bool, error) {
	req := LookupRequest{PeerID: asker.ID, Channel: channel, Digest: digest}
	if err := req.Validate(); err != nil {
		return nil, false, err
	}
	now := r.now()
	keys := []string{haveKey(channel, digest), fetchKey(channel, digest), peersKey(channel), peerInfoKey(channel)}
	leech := 0
	if asker.Leech {
		leech = 1
	}
	res, err := lookupScript.Run(ctx, r.client, keys, now, expiryMS(now, r.opts.FetchTTL), asker.ID, leech,
		maxHoldersRead, gcTTL(r.opts.FetchTTL).Milliseconds()).Slice()
	if err != nil {
		return nil, false, unavailable(err)
	}
	holders, elected, err := decodeLookup(res)
	if err != nil {
		return nil, false, err
	}
	return Rank(asker, holders, limit, rand.Shuffle), elected, nil
}

// decodeLookup reads lookupScript's reply.
func decodeLookup(res []any) ([]Holder, bool, error) {
	if len(res) == 0 || len(res)%2 != 1 {
		return nil, false, unavailable(fmt.Errorf("swarm: lookup reply of %d items", len(res)))
	}
	elected, _ := res[0].(int64)
	holders := make([]Holder, 0, len(res)/2)
	for i := 1; i < len(res); i += 2 {
		state, _ := res[i].(string)
		info, _ := res[i+1].(string)
		var h Holder
		if err := json.Unmarshal([]byte(info), &h.Peer); err != nil {
			continue // not written by Join: skip it rather than fail the lookup
		}
		h.State = HolderState(state)
		holders = append(holders, h)
	}
	return holders, elected == 1, nil
}

// AddStats adds the delta c to the channel's counters in one MULTI/EXEC.
func (r *Redis) AddStats(ctx context.Context, channel string, c Counters) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if c.IsZero() {
		return nil
	}
	key := statsKey(channel)
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range counterFields(&c) {
			if *f.ptr != 0 {
				p.HIncrBy(ctx, key, f.name, *f.ptr)
			}
		}
		p.PExpire(ctx, key, statsGC)
		return nil
	})
	return unavailable(err)
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

// LoadTimeline implements Registry.
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
	t.DiscSeq, _ = strconv.ParseUint(vals["disc_seq"], 10, 64)
	t.TargetDuration, _ = strconv.Atoi(vals["target_duration"])
	return t, true, nil
}

// SaveTimeline implements Registry.
func (r *Redis) SaveTimeline(ctx context.Context, channel, rendition string, t Timeline) error {
	if err := checkStream(channel, rendition); err != nil {
		return err
	}
	err := saveTimeline.Run(ctx, r.client, []string{timelineKey(channel, rendition)},
		"next_seq", t.NextSeq, "disc_seq", t.DiscSeq, "target_duration", t.TargetDuration).Err()
	return unavailable(err)
}
