package swarm

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// addSampleScript adds a sample to the buckets KEYS (the 10 s one, then the 1 min one):
// ARGV[1], ARGV[2] their PEXPIRE (ms), ARGV[3] the field bound, ARGV[4] the number of
// increments, then field, increment pairs, then field, value pairs for the gauges. A field
// not yet in a full bucket is not added.
var addSampleScript = redis.NewScript(satIncr + `
local bound, nincr = tonumber(ARGV[3]), tonumber(ARGV[4])
for k = 1, #KEYS do
  local key = KEYS[k]
  local n = redis.call('HLEN', key)
  for i = 5, #ARGV, 2 do
    local f, v = ARGV[i], ARGV[i+1]
    if n < bound or redis.call('HEXISTS', key, f) == 1 then
      if i < 5 + 2*nincr then
        satincr(key, f, v)
      else
        redis.call('HSET', key, f, v)
      end
      n = redis.call('HLEN', key)
    end
  end
  redis.call('PEXPIRE', key, ARGV[k])
end
return 1`)

// AddSample is Memory.AddSample on Redis: one script call on the two buckets of at.
func (r *Redis) AddSample(ctx context.Context, channel string, at time.Time, s Sample) error {
	if err := checkSample(channel, s); err != nil {
		return err
	}
	incr, set := encodeSample(s)
	if len(incr) == 0 && len(set) == 0 {
		return nil
	}
	keys := []string{
		bucketKey(channel, BucketStep10, at.Truncate(BucketStep10).Unix()/10),
		bucketKey(channel, BucketStep60, at.Truncate(BucketStep60).Unix()/60),
	}
	args := []any{BucketRetention10.Milliseconds(), BucketRetention60.Milliseconds(), maxBucketFields, len(incr)}
	for f, v := range incr {
		args = append(args, f, v)
	}
	for f, v := range set {
		args = append(args, f, v)
	}
	return unavailable(addSampleScript.Run(ctx, r.client, keys, args...).Err())
}

// Buckets is Memory.Buckets on Redis: one pipeline of HGETALLs.
func (r *Redis) Buckets(ctx context.Context, channel string, from, to time.Time, step time.Duration) ([]Bucket, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	stored, starts, err := bucketPlan(from, to, step)
	if err != nil {
		return nil, err
	}
	per := int(step / stored)
	cmds := make([]*redis.MapStringStringCmd, 0, len(starts)*per)
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, start := range starts {
			for i := range per {
				t := start.Add(time.Duration(i) * stored).Unix()
				cmds = append(cmds, p.HGetAll(ctx, bucketKey(channel, stored, t/int64(stored/time.Second))))
			}
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]Bucket, len(starts))
	for i, start := range starts {
		out[i] = Bucket{Start: start}
		for j := range per {
			if h := cmds[i*per+j].Val(); len(h) > 0 {
				out[i].Merge(decodeBucket(start.Add(time.Duration(j)*stored), parseFields(h)))
			}
		}
	}
	return out, nil
}
