package swarm

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
)

// The tracker API, served by the gateway under /api/v1/swarm/ and called by proxies.
// Every request and response body is JSON; request bodies are at most MaxRequestBytes.
const (
	PathAnnounce = "/api/v1/swarm/announce"
	PathHave     = "/api/v1/swarm/have"
	PathLookup   = "/api/v1/swarm/lookup"
	PathLeave    = "/api/v1/swarm/leave"
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
	// MaxRequestBytes bounds every tracker request body.
	MaxRequestBytes = 16 << 10
	// MaxBannedReports bounds AnnounceRequest.Banned.
	MaxBannedReports = 16
	// maxTokenLen bounds a peer token's length.
	maxTokenLen = 128
)

// ErrUnauthorized marks a tracker call whose peer token is missing, invalid or expired
// (401): the peer must announce afresh, without a PeerID, to get a new ID and token.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden marks an announce the gateway refuses (403): the peer's address was banned
// for sending bad bytes. It may still join as a leech.
var ErrForbidden = errors.New("forbidden")

// AnnounceRequest joins a channel's swarm or heartbeats in it, and carries the counter
// deltas since the last accepted announce.
type AnnounceRequest struct {
	// PeerID is empty on the first announce; the gateway issues one.
	PeerID  string `json:"peer_id,omitempty"`
	Channel string `json:"channel"`
	// Addr is the neighbour port as host:port. An empty or unspecified host means "the
	// address you see my requests come from".
	Addr  string   `json:"addr"`
	Group string   `json:"group,omitempty"`
	Leech bool     `json:"leech,omitempty"`
	Stats Counters `json:"stats"`
	// Token is the peer token the last announce returned; required with a PeerID.
	Token string `json:"token,omitempty"`
	// Banned lists peers this one caught sending bytes that do not match the gateway's
	// digest or a redirect, or saw fail several times in a row, since its last accepted
	// announce (at most MaxBannedReports).
	Banned []string `json:"banned,omitempty"`
	// Renditions splits the byte counters of Stats by rendition ("" for a channel's only
	// media playlist; at most MaxReportRenditions).
	Renditions map[string]Counters `json:"renditions,omitempty"`
	// FedBy is the bytes of BytesFromPeers by the group of the neighbour that sent them
	// ("" for ungrouped neighbours; at most MaxFedBy groups).
	FedBy map[string]int64 `json:"fed_by,omitempty"`
}

// Bounds on the breakdowns one announce carries.
const (
	MaxReportRenditions = 16
	MaxFedBy            = 16
)

// AnnounceResponse tells the proxy its ID, its peer token and when to announce again.
type AnnounceResponse struct {
	PeerID string `json:"peer_id"`
	// Token authenticates the peer's other tracker calls for this channel until it
	// expires; every announce returns a fresh one.
	Token      string `json:"token"`
	IntervalMS int64  `json:"interval_ms"`
}

// HaveRequest says the peer holds these segments (digests, hex).
type HaveRequest struct {
	PeerID  string   `json:"peer_id"`
	Channel string   `json:"channel"`
	Token   string   `json:"token"`
	Digests []string `json:"digests"`
}

// LookupRequest asks who holds a segment.
type LookupRequest struct {
	PeerID  string `json:"peer_id"`
	Channel string `json:"channel"`
	Token   string `json:"token"`
	Digest  string `json:"digest"`
	// Group and Leech repeat the asker's announce so that ranking and election need no
	// extra registry read.
	Group string `json:"group,omitempty"`
	Leech bool   `json:"leech,omitempty"`
	// Late says the asker already waited for the segment's seeders (see Registry.Lookup).
	Late bool `json:"late,omitempty"`
}

// LookupResponse lists ranked holders; Fetch tells the asker it was elected to fetch the
// segment from the gateway for the swarm.
type LookupResponse struct {
	Holders []Holder `json:"holders"`
	Fetch   bool     `json:"fetch"`
}

// LeaveRequest removes a peer from a channel's swarm.
type LeaveRequest struct {
	PeerID  string `json:"peer_id"`
	Channel string `json:"channel"`
	Token   string `json:"token"`
}

// StatsResponse is GET /api/v1/stats.
type StatsResponse struct {
	Channels map[string]ChannelReport `json:"channels"`
}

// ChannelReport is one channel's line in StatsResponse.
type ChannelReport struct {
	ChannelStats
	// Offload is BytesFromPeers / (BytesFromPeers + BytesFromGateway).
	Offload float64 `json:"offload"`
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

// Validate checks the request's fields.
func (r AnnounceRequest) Validate() error {
	if !ValidChannel(r.Channel) {
		return badf("channel %q: want 1-64 of A-Z a-z 0-9 _ -", r.Channel)
	}
	if r.PeerID != "" && !ValidPeerID(r.PeerID) {
		return badf("peer_id %q: want 32 lower-case hex characters", r.PeerID)
	}
	if !groupRe.MatchString(r.Group) {
		return badf("group %q: want at most 64 of A-Z a-z 0-9 _ . -", r.Group)
	}
	if len(r.Token) > maxTokenLen {
		return badf("token: over %d characters", maxTokenLen)
	}
	if len(r.Banned) > MaxBannedReports {
		return badf("banned: want at most %d, got %d", MaxBannedReports, len(r.Banned))
	}
	for _, id := range r.Banned {
		if !ValidPeerID(id) {
			return badf("banned peer_id %q: want 32 lower-case hex characters", id)
		}
	}
	if err := r.validateStats(); err != nil {
		return err
	}
	if r.Leech {
		return nil
	}
	host, port, err := net.SplitHostPort(r.Addr)
	if err != nil {
		return badf("addr %q: %v", r.Addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return badf("addr %q: bad port", r.Addr)
	}
	if host != "" && net.ParseIP(host) == nil {
		return badf("addr %q: host must be an IP address", r.Addr)
	}
	return nil
}

// validateStats checks the counters and their breakdowns: non-negative deltas, bounded,
// nothing only gateways count.
func (r AnnounceRequest) validateStats() error {
	if r.Stats.negative() || r.Stats.GatewayEgressBytes != 0 || r.Stats.PeersBanned != 0 {
		return badf("stats: counters must be non-negative deltas")
	}
	if len(r.Renditions) > MaxReportRenditions {
		return badf("renditions: want at most %d, got %d", MaxReportRenditions, len(r.Renditions))
	}
	for name, c := range r.Renditions {
		if !ValidRendition(name) || c.negative() || c.GatewayEgressBytes != 0 || c.PeersBanned != 0 {
			return badf("renditions: %q: want r0, r1, … with non-negative deltas", name)
		}
	}
	if len(r.FedBy) > MaxFedBy {
		return badf("fed_by: want at most %d groups, got %d", MaxFedBy, len(r.FedBy))
	}
	for g, n := range r.FedBy {
		if !groupRe.MatchString(g) || n < 0 {
			return badf("fed_by: %q: want a group name and a non-negative byte count", g)
		}
	}
	return nil
}

// Validate checks the request's fields.
func (r HaveRequest) Validate() error {
	if err := checkChannelPeer(r.Channel, r.PeerID); err != nil {
		return err
	}
	if err := checkToken(r.Token); err != nil {
		return err
	}
	if len(r.Digests) == 0 || len(r.Digests) > MaxHaveDigests {
		return badf("digests: want 1-%d, got %d", MaxHaveDigests, len(r.Digests))
	}
	for _, d := range r.Digests {
		if !ValidDigest(d) {
			return badf("digest %q: want 64 lower-case hex characters", d)
		}
	}
	return nil
}

// Validate checks the request's fields.
func (r LookupRequest) Validate() error {
	if err := checkChannelPeer(r.Channel, r.PeerID); err != nil {
		return err
	}
	if err := checkToken(r.Token); err != nil {
		return err
	}
	if !ValidDigest(r.Digest) {
		return badf("digest %q: want 64 lower-case hex characters", r.Digest)
	}
	if !groupRe.MatchString(r.Group) {
		return badf("group %q: want at most 64 of A-Z a-z 0-9 _ . -", r.Group)
	}
	return nil
}

// Validate checks the request's fields.
func (r LeaveRequest) Validate() error {
	if err := checkChannelPeer(r.Channel, r.PeerID); err != nil {
		return err
	}
	return checkToken(r.Token)
}

// Caller returns the channel, peer ID and peer token the request is made as.
func (r HaveRequest) Caller() (channel, id, token string) { return r.Channel, r.PeerID, r.Token }

// Caller returns the channel, peer ID and peer token the request is made as.
func (r LookupRequest) Caller() (channel, id, token string) { return r.Channel, r.PeerID, r.Token }

// Caller returns the channel, peer ID and peer token the request is made as.
func (r LeaveRequest) Caller() (channel, id, token string) { return r.Channel, r.PeerID, r.Token }
