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
//	rawflow:{CH}:peerinfo      HASH  peer id -> Peer as JSON (its renditions and group say
//	                                 which cells it is a member of)
//	rawflow:{CH}:cell:S:R:G    HASH  peer id -> slot of the members of cell (rendition R, group
//	                                 G; S is u for uploaders, l for leeches), and #next, the
//	                                 slot after the highest ever handed out
//	rawflow:{CH}:free:S:R:G    ZSET  slot -> slot: the cell's freed slots, lowest taken first;
//	                                 both kept cellGC after the last Subscribe
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
//	rawflow:fleet:peerkey      STRING the fleet's peer key (64 hex), set once by the first
//	                                 gateway without --peer-key (FleetPeerKey); no expiry
//	rawflow:fleet:signals      PUB/SUB WebRTC signals between the gateways of a fleet
//	                                 (FleetSignal, PublishSignal, ReceiveSignals); nothing
//	                                 stored
//
// Liveness is decided by comparing a score with Options.Now, never by Redis's clock: a peer
// is live while its peers score is greater than now. Writers prune what expired: Subscribe
// drops expired peers (and their peerinfo), Roster frees the slots of the cell's members
// that are no longer live.
//
// Redis's own expiry is only garbage collection, for channels and digests nobody writes any
// more: each write refreshes a PEXPIRE of twice the longest TTL of what the key holds
// (gcTTL); the stats hash, which has no TTL of its own, lives statsGC after its last write.

// statsGC is how long a channel's counters outlive its last AddStats in Redis.
const statsGC = 24 * time.Hour

// listingsGC is how long a rendition's listings outlive its last List in Redis.
const listingsGC = 24 * time.Hour

// maxPruneBatch bounds the expired members one write removes, so no write does unbounded
// work; what is left is removed by the next writes.
const maxPruneBatch = 256

func channelKey(channel, name string) string { return "rawflow:{" + channel + "}:" + name }

func peersKey(channel string) string    { return channelKey(channel, "peers") }
func peerInfoKey(channel string) string { return channelKey(channel, "peerinfo") }
func statsKey(channel string) string    { return channelKey(channel, "stats") }
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
		{"tracker_refused", &c.TrackerRefused},
	}
}

// fleetPeerKey is the key of the fleet's shared peer key.
const fleetPeerKey = "rawflow:fleet:peerkey"

// fleetSignals is the pub/sub channel of signals between gateways.
const fleetSignals = "rawflow:fleet:signals"
