package swarm

import (
	"errors"
	"time"
)

// Peer is one peer-assist proxy in one channel's swarm, as the registry stores it.
type Peer struct {
	// ID is issued by the gateway when the peer first joins (32 lower-case hex characters).
	ID string `json:"id"`
	// Channel is the channel whose swarm the peer is in.
	Channel string `json:"channel"`
	// Addr is the host:port other proxies dial to reach the peer's neighbour port.
	Addr string `json:"addr"`
	// Group is the operator-chosen locality group (site); empty means none.
	Group string `json:"group,omitempty"`
	// PublicIP is the address the gateway observed the peer's requests come from.
	PublicIP string `json:"public_ip,omitempty"`
	// Leech peers download but never upload: they are never a source in anyone's plan,
	// nor a root.
	Leech bool `json:"leech,omitempty"`
	// Renditions are the renditions the peer plays ("" for a channel's only media
	// playlist): it is a member of the cell (channel, rendition, group) of each (Subscribe).
	Renditions []string `json:"renditions,omitempty"`
	// ICE: the peer can be reached over WebRTC (Subscription.ICE).
	ICE bool `json:"ice,omitempty"`
	// Cert is the fingerprint of its neighbour port's TLS certificate (Subscription.Cert).
	Cert string `json:"cert,omitempty"`
	// Site, when set, confines the peer's cells to the peers of its group on the same
	// site (CellGroup): the tracker sets it to PublicIP for a peer behind a symmetric NAT
	// that neighbours cannot dial (Subscription.NAT), which only its own site's peers reach
	// (over the LAN).
	Site string `json:"site,omitempty"`
}

// CellGroup is the group part of the peer's cells: its Group, and its Site when it has one
// ("@" cannot appear in a group).
func (p Peer) CellGroup() string {
	if p.Site == "" {
		return p.Group
	}
	return p.Group + "@" + p.Site
}

// Counters are delivery counters reported by proxies (and, for GatewayEgressBytes, by
// gateways). They are deltas when reported and totals when read back.
type Counters struct {
	BytesFromGateway    int64 `json:"bytes_from_gateway"`
	BytesFromPeers      int64 `json:"bytes_from_peers"`
	BytesUploaded       int64 `json:"bytes_uploaded"`
	SegmentsFromGateway int64 `json:"segments_from_gateway"`
	SegmentsFromPeers   int64 `json:"segments_from_peers"`
	IntegrityFailures   int64 `json:"integrity_failures"`
	NeighbourFailures   int64 `json:"neighbour_failures"`
	// GatewayEgressBytes is what gateways themselves counted serving segments (ground truth).
	GatewayEgressBytes int64 `json:"gateway_egress_bytes"`
	// Stalls counts the times a proxy saw its player run out of media (a segment delivered
	// after the player's buffer ran dry).
	Stalls int64 `json:"stalls,omitempty"`
	// Startups and StartupMillis count player starts and their total startup time (first
	// playlist request to first segment delivered), in milliseconds.
	Startups      int64 `json:"startups,omitempty"`
	StartupMillis int64 `json:"startup_ms,omitempty"`
	// PeersBanned counts the peers the tracker banned (gateways only).
	PeersBanned int64 `json:"peers_banned,omitempty"`
	// TrackerRefused counts the tracker calls a gateway refused with 429 (gateways only).
	TrackerRefused int64 `json:"tracker_refused,omitempty"`
}

// MaxCounter is where stored counters saturate: 2^53, the largest integer every reader
// (Redis's Lua, JavaScript dashboards) holds exactly. A counter never wraps.
const MaxCounter = 1 << 53

// SatAdd returns a+b within [-MaxCounter, MaxCounter]: it saturates, never overflows.
func SatAdd(a, b int64) int64 {
	a, b = min(max(a, -MaxCounter), MaxCounter), min(max(b, -MaxCounter), MaxCounter)
	return min(max(a+b, -MaxCounter), MaxCounter) // |a+b| <= 2^54: no overflow
}

// Add adds o to c field by field, saturating at ±MaxCounter.
func (c *Counters) Add(o Counters) {
	dst, src := counterFields(c), counterFields(&o)
	for i := range dst {
		*dst[i].ptr = SatAdd(*dst[i].ptr, *src[i].ptr)
	}
}

// Sub subtracts o from c field by field.
func (c *Counters) Sub(o Counters) {
	for _, f := range counterFields(&o) {
		*f.ptr = -*f.ptr
	}
	c.Add(o)
}

// negative reports whether any counter is below zero.
func (c Counters) negative() bool {
	for _, f := range counterFields(&c) {
		if *f.ptr < 0 {
			return true
		}
	}
	return false
}

// IsZero reports whether every counter is zero.
func (c Counters) IsZero() bool { return c == Counters{} }

// Offload is the share of player bytes that peers carried: peer / (peer + gateway).
// It is 0 when nothing was delivered.
func (c Counters) Offload() float64 {
	total := c.BytesFromPeers + c.BytesFromGateway
	if total <= 0 {
		return 0
	}
	return float64(c.BytesFromPeers) / float64(total)
}

// ConfirmedPeerBytes is the part of BytesFromPeers that the uploads reported in the same
// scope corroborate: min(BytesFromPeers, BytesUploaded). An honest uploader counts every
// byte it sends, aborted transfers included, so honest swarms have uploads ≥ receipts.
func (c Counters) ConfirmedPeerBytes() int64 { return max(min(c.BytesFromPeers, c.BytesUploaded), 0) }

// UnconfirmedPeerBytes is the part of BytesFromPeers no reported upload corroborates.
func (c Counters) UnconfirmedPeerBytes() int64 {
	return max(c.BytesFromPeers-c.ConfirmedPeerBytes(), 0)
}

// ConfirmedOffload is Offload with peer bytes counted only as far as uploads corroborate
// them (ConfirmedPeerBytes).
func (c Counters) ConfirmedOffload() float64 {
	peers := c.ConfirmedPeerBytes()
	total := peers + max(c.BytesFromGateway, 0)
	if total <= 0 {
		return 0
	}
	return float64(peers) / float64(total)
}

// ChannelStats is what the registry knows of one channel.
type ChannelStats struct {
	Counters
	// ActivePeers is the number of peers whose registration has not expired.
	ActivePeers int `json:"active_peers"`
}

// Timeline is what a gateway must remember of a channel so that, after a restart, its
// playlists continue where they were: the media sequence and discontinuity sequence never
// decrease and the target duration does not change.
type Timeline struct {
	// NextSeq is the media sequence number the next segment gets.
	NextSeq uint64 `json:"next_seq"`
	// DiscSeq is the discontinuity sequence once every listed segment has left the
	// playlist (EXT-X-DISCONTINUITY-SEQUENCE plus the listed discontinuities).
	DiscSeq uint64 `json:"disc_seq"`
	// TargetDuration is the stream's target duration in seconds.
	TargetDuration int `json:"target_duration"`
}

// MaxListings is how many of a rendition's latest listings a registry remembers for List.
const MaxListings = 512

// ListClaim asks for a segment's place in a rendition's timeline (Registry.List).
type ListClaim struct {
	Digest string // the segment's SHA-256, hex
	Disc   bool   // a new listing starts a discontinuity
	MinSeq uint64 // a new listing's sequence number is at least this
	// MinDiscSeq is the least discontinuity sequence a new listing may have (the
	// claimant's own count, which may be ahead after it numbered segments alone).
	MinDiscSeq uint64
	// TargetDuration is the stream's target duration, recorded in the timeline if none is.
	TargetDuration int
	// MaxAge is how long ago the digest may have been listed and still keep its listing
	// (about the origin playlist's span: a gateway joining late lists its oldest segment);
	// zero: any age.
	MaxAge time.Duration
	// MaxBehind is how far behind the timeline's next number that listing may be and
	// still count (about the origin playlist's length); zero: any distance.
	MaxBehind uint64
}

// Listing is a segment's place in a rendition's fleet-wide timeline.
type Listing struct {
	Seq  uint64 // media sequence number
	Disc bool   // preceded by EXT-X-DISCONTINUITY
	// DiscSeq is the segment's discontinuity sequence number (its own tag counted): a
	// playlist starting with it has EXT-X-DISCONTINUITY-SEQUENCE DiscSeq, less one if Disc.
	DiscSeq uint64
}

// Options are the registry's TTL and clock. The zero value of each field means its default.
type Options struct {
	// PeerTTL is how long a peer stays registered after its last Subscribe or Refresh.
	// Default 15 s.
	PeerTTL time.Duration
	// TLSCAFile names a PEM file of certificate authorities to trust for a rediss:// URL
	// (OpenRedis); empty means the system's.
	TLSCAFile string
	// Now is the clock; nil means time.Now. Expiry is decided against this clock in both
	// implementations, so tests can move time without sleeping.
	Now func() time.Time
}

// Defaults and bounds.
const (
	DefaultPeerTTL = 15 * time.Second
	// MaxSeeders bounds the roots per stripe of a cell (see Roster).
	MaxSeeders = 8
)

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.PeerTTL <= 0 {
		o.PeerTTL = DefaultPeerTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ErrUnavailable wraps failures of the backing store (Redis down). Callers degrade to
// "no neighbours, use the gateway".
var ErrUnavailable = errors.New("swarm: registry unavailable")
