package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// cellKeys returns the Redis keys of a cell's slot space: its slots and its free slots.
func cellKeys(channel string, k cellKey) (slots, free string) {
	space := "u"
	if k.leech {
		space = "l"
	}
	name := space + ":" + k.rendition + ":" + k.group
	return channelKey(channel, "cell:"+name), channelKey(channel, "free:"+name)
}

// cellGC is how long a cell's keys outlive their last Subscribe in Redis: its members are
// kept alive by Refresh, which does not touch them.
const cellGC = statsGC

// subscribeScript drops up to ARGV[9] expired peers (their slots are freed by the next
// Roster of their cells), registers a peer and moves it between cells. KEYS: peers,
// peerinfo, then (slots, free) of each cell to leave, then of each cell to join. ARGV:
// expiry, id, peer JSON, gc ms (peers), cells to leave, cells to join, gc ms (cells), now,
// prune batch. It returns the slot taken in each cell joined: the one held, else the
// lowest free, else the next.
var subscribeScript = redis.NewScript(`
local id, nLeave, nJoin = ARGV[2], tonumber(ARGV[5]), tonumber(ARGV[6])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[8], 'LIMIT', 0, ARGV[9])
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
end
redis.call('ZADD', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], id, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local k = 3
for i = 1, nLeave do
  local s = redis.call('HGET', KEYS[k], id)
  if s then
    redis.call('HDEL', KEYS[k], id)
    redis.call('ZADD', KEYS[k+1], s, s)
  end
  k = k + 2
end
local out = {}
for i = 1, nJoin do
  local s = redis.call('HGET', KEYS[k], id)
  if not s then
    local f = redis.call('ZPOPMIN', KEYS[k+1])
    if #f > 0 then s = f[1] else s = tostring(redis.call('HINCRBY', KEYS[k], '#next', 1) - 1) end
    redis.call('HSET', KEYS[k], id, s)
  end
  redis.call('PEXPIRE', KEYS[k], ARGV[7])
  redis.call('PEXPIRE', KEYS[k+1], ARGV[7])
  out[#out + 1] = s
  k = k + 2
end
return out
`)

// Subscribe is Memory.Subscribe on Redis: the peer's previous registration is read, then
// one script moves it.
func (r *Redis) Subscribe(ctx context.Context, p Peer, renditions []string) (map[string]int, error) {
	if err := checkSubscribe(p, renditions); err != nil {
		return nil, err
	}
	p.Renditions = slices.Clone(renditions)
	info, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("swarm: encode peer: %w", err)
	}
	join := cellsOf(p)
	var leave []cellKey
	old, err := r.client.HGet(ctx, peerInfoKey(p.Channel), p.ID).Result()
	switch {
	case err == nil:
		var was Peer
		if json.Unmarshal([]byte(old), &was) == nil {
			for _, k := range cellsOf(was) {
				if !slices.Contains(join, k) {
					leave = append(leave, k)
				}
			}
		}
	case !errors.Is(err, redis.Nil):
		return nil, unavailable(err)
	}
	keys := []string{peersKey(p.Channel), peerInfoKey(p.Channel)}
	for _, k := range append(slices.Clone(leave), join...) {
		slots, free := cellKeys(p.Channel, k)
		keys = append(keys, slots, free)
	}
	now := r.now()
	res, err := subscribeScript.Run(ctx, r.client, keys, expiryMS(now, r.opts.PeerTTL), p.ID, info,
		gcTTL(r.opts.PeerTTL).Milliseconds(), len(leave), len(join), cellGC.Milliseconds(), now, maxPruneBatch).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(res) != len(join) {
		return nil, unavailable(fmt.Errorf("subscribe script answered %q", res))
	}
	slots := make(map[string]int, len(join))
	for i, k := range join {
		if slots[k.rendition], err = strconv.Atoi(res[i]); err != nil {
			return nil, unavailable(fmt.Errorf("subscribe script answered %q", res))
		}
	}
	return slots, nil
}

// maxRefreshBatch bounds the members of one ZADD of Refresh.
const maxRefreshBatch = 1000

// Refresh is Memory.Refresh on Redis: one ZADD XX per thousand peers, in one pipeline (a
// peer whose registration is gone stays gone: it subscribes again), which also pushes back
// the GC expiry of the peers and peerinfo keys. Without that, a swarm nobody joined for
// gcTTL lost both keys at once: every member fell out of its cells, subscribed again on new
// slots, and every plan of the channel changed together (1,000 viewers: a storm of new
// neighbour connections 30 s after the last join).
func (r *Redis) Refresh(ctx context.Context, channel string, ids []string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	exp := float64(expiryMS(r.now(), r.opts.PeerTTL))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for batch := range slices.Chunk(ids, maxRefreshBatch) {
			zs := make([]redis.Z, len(batch))
			for i, id := range batch {
				zs[i] = redis.Z{Score: exp, Member: id}
			}
			p.ZAddXX(ctx, peersKey(channel), zs...)
		}
		gc := gcTTL(r.opts.PeerTTL)
		p.PExpire(ctx, peersKey(channel), gc)
		p.PExpire(ctx, peerInfoKey(channel), gc)
		return nil
	})
	return unavailable(err)
}

// rosterScript reads a cell's live members, freeing the slots of those whose registration
// has expired. KEYS: peers, peerinfo, uploaders' slots and free slots, leeches' slots and
// free slots. ARGV: now, most members, gc ms. It returns {space (0 uploader, 1 leech),
// slot, peer JSON, …}.
var rosterScript = redis.NewScript(`
local now, most = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for c = 0, 1 do
  local slots, free = KEYS[3 + 2*c], KEYS[4 + 2*c]
  local all = redis.call('HGETALL', slots)
  for i = 1, #all, 2 do
    local id, s = all[i], all[i+1]
    if id ~= '#next' then
      local exp = redis.call('ZSCORE', KEYS[1], id)
      local info = redis.call('HGET', KEYS[2], id)
      if exp and tonumber(exp) > now and info then
        if #out < 3 * most then
          out[#out + 1] = c
          out[#out + 1] = s
          out[#out + 1] = info
        end
      else
        redis.call('HDEL', slots, id)
        redis.call('ZADD', free, s, s)
        redis.call('PEXPIRE', free, ARGV[3])
      end
    end
  end
end
return out
`)

// Roster is Memory.Roster on Redis: one script.
func (r *Redis) Roster(ctx context.Context, channel, rendition, group string) ([]Member, error) {
	if err := checkStream(channel, rendition); err != nil {
		return nil, err
	}
	us, uf := cellKeys(channel, cellKey{rendition: rendition, group: group})
	ls, lf := cellKeys(channel, cellKey{rendition: rendition, group: group, leech: true})
	res, err := rosterScript.Run(ctx, r.client, []string{peersKey(channel), peerInfoKey(channel), us, uf, ls, lf},
		r.now(), MaxRoster, cellGC.Milliseconds()).Slice()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]Member, 0, len(res)/3)
	for i := 0; i+2 < len(res); i += 3 {
		slot, err1 := strconv.Atoi(fmt.Sprint(res[i+1]))
		info, _ := res[i+2].(string)
		var m Member
		if err1 != nil || json.Unmarshal([]byte(info), &m.Peer) != nil {
			continue // not written by Subscribe
		}
		m.Slot = slot
		out = append(out, m)
	}
	sortMembers(out)
	return out, nil
}

// leaveCellsScript frees a peer's slots. KEYS: (slots, free) of each cell. ARGV: id, gc ms.
var leaveCellsScript = redis.NewScript(`
for k = 1, #KEYS, 2 do
  local s = redis.call('HGET', KEYS[k], ARGV[1])
  if s then
    redis.call('HDEL', KEYS[k], ARGV[1])
    redis.call('ZADD', KEYS[k+1], s, s)
    redis.call('PEXPIRE', KEYS[k+1], ARGV[2])
  end
end
return 0
`)

// leaveCells frees p's slots in its cells.
func (r *Redis) leaveCells(ctx context.Context, p Peer) error {
	var keys []string
	for _, k := range cellsOf(p) {
		slots, free := cellKeys(p.Channel, k)
		keys = append(keys, slots, free)
	}
	if len(keys) == 0 {
		return nil
	}
	return unavailable(leaveCellsScript.Run(ctx, r.client, keys, p.ID, cellGC.Milliseconds()).Err())
}
