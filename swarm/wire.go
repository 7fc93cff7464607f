package swarm

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// The tracker API, served by the gateway under /api/v1/swarm/ and called by proxies (see
// events.go). Every request and response body is JSON; request bodies are at most
// MaxRequestBytes.
const (
	// PathStats is the gateway's per-channel stats (GET).
	PathStats = "/api/v1/stats"
	// PeerPlaylistQuery, appended to a media playlist URL on the gateway, selects the proxies'
	// form of the playlist: the players' form plus one digest tag per segment.
	PeerPlaylistQuery = "rawflow=peer"
	// TokenQuery is the query parameter of a signed viewer URL's token (gateway --sign-key);
	// proxies pass it through to the gateway.
	TokenQuery = "token"
	// NeighbourSegmentPath is the prefix of the neighbour port's segment route; the digest
	// (hex) follows it.
	NeighbourSegmentPath = "/peer/v1/segments/"
	// FetchHeader, on a proxy's segment request to the gateway, says why it asks:
	// FetchRoot (the plan makes it its cell's root for the segment's stripe: its cell's one
	// copy) or FetchMember (a member of a cell whose swarm did not deliver in time, see
	// NeedHeader). A request without it (a player, a leech with no plan) is never refused.
	FetchHeader = "RawFlow-Fetch"
	FetchRoot   = "root"
	FetchMember = "member"
	// GroupHeader, with FetchHeader, names the requester's locality group (its cell).
	GroupHeader = "RawFlow-Group"
	// NeedHeader, with FetchMember, is the time left until the requester's player needs the
	// segment, in milliseconds.
	NeedHeader = "RawFlow-Need"
	// HeldHeader is set on a 503 the gateway answers a member's fetch with while its uplink
	// is saturated and its cell's root is getting (or got) the segment: wait for the swarm,
	// and ask again with less than UrgentNeed left if it has not delivered by then.
	HeldHeader = "RawFlow-Held"
	// UrgentNeed: a member's fetch with less than this left (NeedHeader) is never refused.
	UrgentNeed = 1500 * time.Millisecond
	// MaxRequestBytes bounds every tracker request body.
	MaxRequestBytes = 16 << 10
	// MaxBannedReports bounds AnnounceRequest.Banned.
	MaxBannedReports = 16
	// maxTokenLen bounds a peer token's length.
	maxTokenLen = 128
)

// ErrUnauthorized marks a tracker call whose peer token is missing, invalid or expired
// (401): the peer must join afresh, without credentials, to get a new ID and token.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden marks a join the gateway refuses (403): the peer's address was banned for
// sending bad bytes. It may still join as a leech.
var ErrForbidden = errors.New("forbidden")

// Bounds on the breakdowns one report carries.
const (
	MaxReportRenditions = 16
	MaxFedBy            = 16
)

// StatsResponse is GET /api/v1/stats.
type StatsResponse struct {
	Channels map[string]ChannelReport `json:"channels"`
}

// ChannelReport is one channel's line in StatsResponse.
type ChannelReport struct {
	ChannelStats
	// Offload is P / (P + BytesFromGateway), P the peer bytes uploads corroborate
	// (Counters.ConfirmedOffload).
	Offload float64 `json:"offload"`
	// UnconfirmedPeerBytes is the part of BytesFromPeers no reported upload corroborates.
	UnconfirmedPeerBytes int64 `json:"unconfirmed_peer_bytes"`
}

// ErrBadRequest marks a request that fails validation.
var ErrBadRequest = errors.New("bad request")

var (
	channelRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	peerIDRe  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	digestRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	groupRe   = regexp.MustCompile(`^[A-Za-z0-9_.-]{0,64}$`)
)

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)
}

// ValidGroup reports whether name can name a locality group: at most 64 of
// [A-Za-z0-9_.-] ("" is the peers without a group).
func ValidGroup(name string) bool { return groupRe.MatchString(name) }

// ValidChannel reports whether name can name a channel: 1–64 of [A-Za-z0-9_-].
func ValidChannel(name string) bool { return channelRe.MatchString(name) }

var renditionRe = regexp.MustCompile(`^(r[0-9]{1,3})?$`)

// ValidRendition reports whether name can name a rendition: "" (the channel's only media
// playlist) or r0, r1, ….
func ValidRendition(name string) bool { return renditionRe.MatchString(name) }

// ValidPeerID reports whether id has the form the gateway issues.
func ValidPeerID(id string) bool { return peerIDRe.MatchString(id) }

// ValidDigest reports whether d is a lower-case hex SHA-256.
func ValidDigest(d string) bool { return digestRe.MatchString(d) }

// checkToken bounds a peer token's length (its validity is the gateway's to check).
func checkToken(token string) error {
	if len(token) > maxTokenLen {
		return badf("token: over %d characters", maxTokenLen)
	}
	return nil
}

func checkChannelPeer(channel, peerID string) error {
	if !ValidChannel(channel) {
		return badf("channel %q: want 1-64 of A-Z a-z 0-9 _ -", channel)
	}
	if !ValidPeerID(peerID) {
		return badf("peer_id %q: want 32 lower-case hex characters", peerID)
	}
	return nil
}

// validateStats checks a report's counters and their breakdowns: non-negative deltas,
// bounded, nothing only gateways count.
func (r ReportRequest) validateStats() error {
	if r.Stats.negative() || r.Stats.GatewayEgressBytes != 0 || r.Stats.PeersBanned != 0 || r.Stats.TrackerRefused != 0 {
		return badf("stats: counters must be non-negative deltas")
	}
	if len(r.Renditions) > MaxReportRenditions {
		return badf("renditions: want at most %d, got %d", MaxReportRenditions, len(r.Renditions))
	}
	for name, c := range r.Renditions {
		if !ValidRendition(name) || c.negative() || c.GatewayEgressBytes != 0 || c.PeersBanned != 0 || c.TrackerRefused != 0 {
			return badf("renditions: %q: want r0, r1, … with non-negative deltas", name)
		}
	}
	if len(r.FedBy) > MaxFedBy {
		return badf("fed_by: want at most %d groups, got %d", MaxFedBy, len(r.FedBy))
	}
	if len(r.Paths) > len(PeerPaths) {
		return badf("paths: want at most %d, got %d", len(PeerPaths), len(r.Paths))
	}
	for path, n := range r.Paths {
		if !ValidPeerPath(path) || n < 0 {
			return badf("paths: %q: want one of %v and a non-negative byte count", path, PeerPaths)
		}
	}
	for g, n := range r.FedBy {
		if !groupRe.MatchString(g) || n < 0 {
			return badf("fed_by: %q: want a group name and a non-negative byte count", g)
		}
	}
	return nil
}

// PeerPaths are how a neighbour's bytes can travel: direct (TCP to its neighbour port),
// or a WebRTC link over a pair of ICE candidates — host (a direct UDP path), srflx and
// prflx (through NATs), relay (through TURN).
var PeerPaths = []string{"direct", "host", "srflx", "prflx", "relay"}

// ValidPeerPath reports whether p is one of PeerPaths.
func ValidPeerPath(p string) bool { return slices.Contains(PeerPaths, p) }
