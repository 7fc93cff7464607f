package swarm

import (
	"strconv"
	"time"
)

// Redis key layout. This comment is the one place it is written down.
//
// Every key of channel CH carries the hash tag {CH}, so all of a channel's keys live in one
// Redis Cluster slot and the multi-key transactions and Lua scripts below stay legal there.
// Channel names cannot contain '{', '}' or ':' (see ValidChannel).
//
//	rawflow:{CH}:peers         ZSET  peer id -> registration expiry (unix ms)
//	rawflow:{CH}:peerinfo      HASH  peer id -> Peer as JSON
//	rawflow:{CH}:have:DIGEST   ZSET  peer id -> holding expiry (unix ms)
//	rawflow:{CH}:fetch:DIGEST  ZSET  peer id -> fetch claim expiry (unix ms)
//	rawflow:{CH}:group:G       ZSET  peer id -> registration expiry (unix ms) of the uploading
//	                                 (non-leech) peers of group G ("" for ungrouped peers):
//	                                 the candidates of seeder election
//	rawflow:{CH}:seed:DIGEST:G SET   the seeders chosen for segment DIGEST in group G; kept
//	                                 HoldTTL from its first Lookup
//	rawflow:{CH}:held:ID       ZSET  digest  -> holding expiry (unix ms); the reverse index of
//	                                 the have:* keys, so Leave can drop a peer's holdings
//	rawflow:{CH}:stats         HASH  counter name (the JSON names of Counters) -> total
//	rawflow:{CH}:b10:T         HASH  the counters of the 10-second bucket starting at unix time
//	rawflow:{CH}:b60:T         HASH  T·10 (b10) or T·60 (b60), as bucket fields (see
//	                                 encodeSample): t|F totals, r|R|F per rendition, g|G|F per
//	                                 group, f|A|B bytes group B got from group A, va / vd|GW
//	                                 viewer gauges; at most maxBucketFields fields; kept
//	                                 BucketRetention10 / BucketRetention60
//	rawflow:{CH}:timeline[:R]  HASH  next_seq, disc_seq, target_duration (Timeline) of the
//	                                 channel's media playlist, or of its rendition R, and
//	                                 last_dseq (DiscSeq of the newest listing); each field
//	                                 only ever grows; no expiry (it must outlive gateway
//	                                 restarts)
//	rawflow:{CH}:listing[:R]   ZSET  digest -> media sequence number of the last MaxListings
//	                                 segments listed (List), the fleet's numbering
//	rawflow:{CH}:listinfo[:R]  HASH  digest -> "DISC DISCSEQ LISTEDMS" of the same segments; both
//	                                 kept listingsGC after the last listing (the timeline
//	                                 carries the numbering on)
//
// Liveness is decided by comparing a score with Options.Now, never by Redis's clock: a peer
// is live while its peers score is greater than now, and a holding or claim counts only
// while its own score is greater than now and its peer is live. Writers prune what expired:
// Join drops expired peers (and their peerinfo), Have prunes the have and held zsets it
// touches, Lookup prunes the digest's have and fetch zsets.
//
// Redis's own expiry is only garbage collection, for channels and digests nobody writes any
// more: each write refreshes a PEXPIRE of twice the longest TTL of what the key holds
// (gcTTL); the stats hash, which has no TTL of its own, lives statsGC after its last write.

// statsGC is how long a channel's counters outlive its last AddStats in Redis.
const statsGC = 24 * time.Hour

// listingsGC is how long a rendition's listings outlive its last List in Redis.
const listingsGC = 24 * time.Hour

// maxHoldersRead bounds the have and fetch members one Lookup reads from Redis (the
// freshest first).
const maxHoldersRead = 256

// maxPruneBatch bounds the expired members one write removes, so no write does unbounded
// work; what is left is removed by the next writes.
const maxPruneBatch = 256

func channelKey(channel, name string) string { return "rawflow:{" + channel + "}:" + name }

func peersKey(channel string) string         { return channelKey(channel, "peers") }
func peerInfoKey(channel string) string      { return channelKey(channel, "peerinfo") }
func haveKey(channel, digest string) string  { return channelKey(channel, "have:"+digest) }
func fetchKey(channel, digest string) string { return channelKey(channel, "fetch:"+digest) }
func heldKey(channel, id string) string      { return channelKey(channel, "held:"+id) }
func groupKey(channel, group string) string  { return channelKey(channel, "group:"+group) }
func seedKey(channel, digest, group string) string {
	return channelKey(channel, "seed:"+digest+":"+group)
}
func statsKey(channel string) string { return channelKey(channel, "stats") }
func bucketKey(channel string, step time.Duration, t int64) string {
	return channelKey(channel, "b"+strconv.Itoa(int(step/time.Second))+":"+strconv.FormatInt(t, 10))
}
func listingKey(channel, rendition string) string { return renditionKey(channel, "listing", rendition) }
func listInfoKey(channel, rendition string) string {
	return renditionKey(channel, "listinfo", rendition)
}

// renditionKey names a key of a channel's media playlist ("") or of its rendition R.
func renditionKey(channel, name, rendition string) string {
	if rendition == "" {
		return channelKey(channel, name)
	}
	return channelKey(channel, name+":"+rendition)
}

func timelineKey(channel, rendition string) string {
	return renditionKey(channel, "timeline", rendition)
}

// gcTTL is the PEXPIRE given to a key whose members live at most ttl.
func gcTTL(ttl time.Duration) time.Duration { return 2 * ttl }

// counterField names one field of Counters in the stats hash.
type counterField struct {
	name string
	ptr  *int64
}

// counterFields lists c's fields under their names in the stats hash.
func counterFields(c *Counters) []counterField {
	return []counterField{
		{"bytes_from_gateway", &c.BytesFromGateway},
		{"bytes_from_peers", &c.BytesFromPeers},
		{"bytes_uploaded", &c.BytesUploaded},
		{"segments_from_gateway", &c.SegmentsFromGateway},
		{"segments_from_peers", &c.SegmentsFromPeers},
		{"integrity_failures", &c.IntegrityFailures},
		{"neighbour_failures", &c.NeighbourFailures},
		{"gateway_egress_bytes", &c.GatewayEgressBytes},
		{"stalls", &c.Stalls},
		{"startups", &c.Startups},
		{"startup_ms", &c.StartupMillis},
		{"peers_banned", &c.PeersBanned},
	}
}
