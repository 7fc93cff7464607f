package swarm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The event stream. A proxy joins a channel's swarm by opening GET PathEvents with its
// Subscription as the query (and, to resume the peer it was, "Authorization: RawFlow-Peer
// ID TOKEN"); the gateway answers with Server-Sent Events for as long as the proxy stays:
//
//	event: hello    Hello: the peer's ID and token, how often to report
//	event: plan     Plan: where the peer gets each stripe of a rendition; again when it changes
//	event: segment  SegmentEvent: a segment the gateway just listed, digest included
//	event: token    TokenEvent: a fresh peer token, before the last one expires
//	event: signal   SignalEvent: a neighbour's WebRTC offer or answer (signal.go)
//	: ping          a comment now and then, which keeps NATs and idle timers open
//
// The stream is the peer's membership: while it is open the gateway keeps the peer
// registered; when it closes the peer leaves (at once when its last report said so, else
// when its registration expires). Stats go up with POST PathReport.
const (
	PathEvents = "/api/v1/swarm/events"
	PathReport = "/api/v1/swarm/report"
	// AuthScheme is the Authorization scheme of a peer's credentials: "RawFlow-Peer ID TOKEN".
	AuthScheme = "RawFlow-Peer"
	// MaxEventBytes bounds one event's data line.
	MaxEventBytes = 64 << 10
)

// Event names.
const (
	EventHello   = "hello"
	EventPlan    = "plan"
	EventSegment = "segment"
	EventToken   = "token"
)

// Subscription is what a proxy asks of a channel's swarm when it opens its event stream.
type Subscription struct {
	Channel string
	// Renditions are the renditions its player plays ("" for a channel's only media
	// playlist): at most MaxRenditionsPerPeer.
	Renditions []string
	// Addr is the neighbour port as host:port; an empty or unspecified host means "the
	// address you see my requests come from". Empty for a leech.
	Addr  string
	Group string
	Leech bool
	// ICE says the proxy can be reached over WebRTC (signal events): neighbours that cannot
	// open a TCP connection to Addr (it is behind a NAT) connect that way.
	ICE bool
	// Cert is the fingerprint (CertFingerprint) of the TLS certificate its neighbour port
	// at Addr serves: neighbours dialling Addr accept that certificate only. Empty: the
	// port speaks plain HTTP.
	Cert string
	// NAT is how the proxy's NAT maps its UDP flows, as it found with the gateway's two STUN
	// ports (NATCone, NATSymmetric; "" when it could not tell).
	NAT string
}

// How a proxy's NAT maps its flows (Subscription.NAT).
const (
	// NATCone: one public address and port for a local port, whatever the destination
	// (endpoint-independent mapping): ICE crosses it.
	NATCone = "cone"
	// NATSymmetric: a new public port for each destination: ICE cannot cross it to another
	// NAT without TURN, so such a peer without an address neighbours can dial is planned
	// with its own site only (Peer.Site).
	NATSymmetric = "symmetric"
)

// Query encodes the subscription as the event stream's query.
func (s Subscription) Query() url.Values {
	q := url.Values{"channel": {s.Channel}, "rendition": s.Renditions}
	if s.Renditions == nil {
		q.Del("rendition")
	}
	if s.Addr != "" {
		q.Set("addr", s.Addr)
	}
	if s.Group != "" {
		q.Set("group", s.Group)
	}
	if s.Leech {
		q.Set("leech", "1")
	}
	if s.ICE {
		q.Set("ice", "1")
	}
	if s.Cert != "" {
		q.Set("cert", s.Cert)
	}
	if s.NAT != "" {
		q.Set("nat", s.NAT)
	}
	return q
}

// ParseSubscription decodes and validates an event stream's query.
func ParseSubscription(q url.Values) (Subscription, error) {
	s := Subscription{Channel: q.Get("channel"), Renditions: q["rendition"], Addr: q.Get("addr"),
		Group: q.Get("group"), Leech: q.Get("leech") == "1", ICE: q.Get("ice") == "1", Cert: q.Get("cert"), NAT: q.Get("nat")}
	if !ValidChannel(s.Channel) {
		return s, badf("channel %q: want 1-64 of A-Z a-z 0-9 _ -", s.Channel)
	}
	if len(s.Renditions) > MaxRenditionsPerPeer {
		return s, badf("rendition: want at most %d, got %d", MaxRenditionsPerPeer, len(s.Renditions))
	}
	for _, r := range s.Renditions {
		if !ValidRendition(r) {
			return s, badf("rendition %q: want r0, r1, … or empty", r)
		}
	}
	if slices.Contains(s.Renditions, "") && len(s.Renditions) > 1 {
		return s, badf("rendition: a channel's only media playlist (\"\") comes alone")
	}
	slices.Sort(s.Renditions)
	s.Renditions = slices.Compact(s.Renditions)
	if !ValidGroup(s.Group) {
		return s, badf("group %q: want at most 64 of A-Z a-z 0-9 _ . -", s.Group)
	}
	if s.NAT != "" && s.NAT != NATCone && s.NAT != NATSymmetric {
		return s, badf("nat %q: want %s, %s or nothing", s.NAT, NATCone, NATSymmetric)
	}
	if s.Cert != "" && !ValidDigest(s.Cert) {
		return s, badf("cert %q: want the certificate's SHA-256, 64 hex digits", s.Cert)
	}
	if s.Leech || s.ICE && s.Addr == "" { // reached over WebRTC only
		s.Cert = "" // no neighbour port to speak TLS on
		return s, nil
	}
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return s, badf("addr %q: %v", s.Addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return s, badf("addr %q: bad port", s.Addr)
	}
	if host != "" && net.ParseIP(host) == nil {
		return s, badf("addr %q: host must be an IP address", s.Addr)
	}
	return s, nil
}

// Hello opens a peer's event stream.
type Hello struct {
	PeerID string `json:"peer_id"`
	// Token authenticates the peer's reports (and a stream that resumes it) until it
	// expires; token events bring fresh ones.
	Token string `json:"token"`
	// ReportMS is how often the peer reports its counters, in milliseconds.
	ReportMS int64 `json:"report_ms"`
	// AddrPolicy is the gateway's neighbour address policy (AddrPolicy.String; "" is
	// public): a proxy dials no neighbour it does not allow.
	AddrPolicy string `json:"addr_policy,omitempty"`
	// AllowOrigins are web origins (scheme://host[:port]) whose pages may play through a
	// proxy's player port, besides the gateway's own and those its viewer allows.
	AllowOrigins []string `json:"allow_origins,omitempty"`
	// STUNPort is the UDP port on which the gateway's host answers STUN (0: it does not):
	// a proxy finds its address as the internet sees it there (stun:GATEWAY-HOST:PORT).
	STUNPort int `json:"stun_port,omitempty"`
	// STUNAltPort is a second UDP port on the same host that answers STUN (0: none): a
	// proxy that gets different public ports from the two is behind a symmetric NAT
	// (Subscription.NAT).
	STUNAltPort int `json:"stun_alt_port,omitempty"`
	// ICEServers are further STUN and TURN servers, a TURN server's credentials issued for
	// this peer (at most MaxICEServers).
	ICEServers []ICEServer `json:"ice_servers,omitempty"`
	// SwarmKeys admit the peer to its neighbours' ports (admission.go): the channel's keys
	// of the credential window of the moment and the next.
	SwarmKeys []ChannelKey `json:"swarm_keys,omitempty"`
	// TimeMS is the gateway's clock (Unix milliseconds) as it sent the event: credentials
	// are made and checked on it.
	TimeMS int64 `json:"time_ms,omitempty"`
}

// SegmentEvent announces a segment the gateway just listed. Its digest is the same trust
// root as the proxies' form of the playlist: it comes from the gateway.
type SegmentEvent struct {
	Rendition  string `json:"rendition"`
	Seq        uint64 `json:"seq"`
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	Size       int64  `json:"size"`
	DurationMS int64  `json:"duration_ms"`
}

// TokenEvent carries a fresh peer token, the swarm keys of the moment and the gateway's
// clock (as Hello).
type TokenEvent struct {
	Token     string       `json:"token"`
	SwarmKeys []ChannelKey `json:"swarm_keys,omitempty"`
	TimeMS    int64        `json:"time_ms,omitempty"`
}

// ReportRequest carries a peer's counter deltas since its last accepted report (POST
// PathReport), and what it caught its neighbours doing.
type ReportRequest struct {
	PeerID  string   `json:"peer_id"`
	Channel string   `json:"channel"`
	Token   string   `json:"token"`
	Stats   Counters `json:"stats"`
	// Banned lists neighbours this one caught sending bytes that do not match the
	// gateway's digest or a redirect, or saw fail several times in a row (at most
	// MaxBannedReports).
	Banned []string `json:"banned,omitempty"`
	// Renditions splits the byte counters by rendition (at most MaxReportRenditions).
	Renditions map[string]Counters `json:"renditions,omitempty"`
	// FedBy is the bytes of BytesFromPeers by the group of the neighbour that sent them.
	FedBy map[string]int64 `json:"fed_by,omitempty"`
	// Paths is the bytes of BytesFromPeers by how they travelled (PeerPaths).
	Paths map[string]int64 `json:"paths,omitempty"`
	// Leave says the peer is leaving: its membership ends with this report.
	Leave bool `json:"leave,omitempty"`
}

// Caller returns the channel, peer ID and peer token the request is made as.
func (r ReportRequest) Caller() (channel, id, token string) { return r.Channel, r.PeerID, r.Token }

// Validate checks the request's fields.
func (r ReportRequest) Validate() error {
	if err := checkChannelPeer(r.Channel, r.PeerID); err != nil {
		return err
	}
	if err := checkToken(r.Token); err != nil {
		return err
	}
	if len(r.Banned) > MaxBannedReports {
		return badf("banned: want at most %d, got %d", MaxBannedReports, len(r.Banned))
	}
	for _, id := range r.Banned {
		if !ValidPeerID(id) {
			return badf("banned peer_id %q: want 32 lower-case hex characters", id)
		}
	}
	return r.validateStats()
}

// Event is one Server-Sent Event.
type Event struct {
	Name string
	Data []byte
}

// EventReader reads Server-Sent Events: "event:" and "data:" lines (one data line per
// event, as the gateway writes them), comments and unknown fields skipped, every line
// bounded to MaxEventBytes.
type EventReader struct {
	r *bufio.Reader
}

// NewEventReader reads events from r.
func NewEventReader(r io.Reader) *EventReader {
	return &EventReader{r: bufio.NewReaderSize(r, 4<<10)}
}

// ErrEventTooLarge reports a line of the stream that exceeded MaxEventBytes.
var ErrEventTooLarge = errors.New("swarm: event over the size limit")

// Next returns the next event with a data line.
func (er *EventReader) Next() (Event, error) {
	var ev Event
	for {
		line, err := er.line()
		if err != nil {
			return Event{}, err
		}
		switch {
		case len(line) == 0: // dispatch
			if ev.Data != nil {
				return ev, nil
			}
			ev = Event{}
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("event:")):
			ev.Name = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			ev.Data = bytes.TrimPrefix(line[len("data:"):], []byte(" "))
		}
	}
}

// line reads one line without its end, at most MaxEventBytes.
func (er *EventReader) line() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := er.r.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxEventBytes+2 {
			return nil, ErrEventTooLarge
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimRight(buf, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// WriteEvent writes one event in the stream's format.
func WriteEvent(w io.Writer, name string, data []byte) error {
	if bytes.ContainsAny(data, "\r\n") {
		return fmt.Errorf("swarm: event %s: data must be one line", name)
	}
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
	return err
}

// FormatAuth returns the Authorization header value of a peer's credentials.
func FormatAuth(id, token string) string { return AuthScheme + " " + id + " " + token }

// ParseAuth reads a peer's credentials from an Authorization header value; ok is false
// when there are none of this scheme.
func ParseAuth(v string) (id, token string, ok bool) {
	scheme, rest, _ := strings.Cut(v, " ")
	if scheme != AuthScheme {
		return "", "", false
	}
	id, token, ok = strings.Cut(rest, " ")
	return id, token, ok && ValidPeerID(id) && checkToken(token) == nil
}
