package gateway

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/rawflow/rawflow/gateway/tsingest"
	"github.com/rawflow/rawflow/swarm"
)

// ChannelConfig names one channel and its origin.
type ChannelConfig struct {
	// Name is the channel's name in URLs: 1–64 of [A-Za-z0-9_-].
	Name string
	// Sources are the origin's URLs, in order of preference: when the current one keeps
	// failing, the next takes over. Each is an HLS playlist (media or multivariant, http or
	// https) or a continuous MPEG-TS stream: http(s) too (told apart by its first bytes),
	// udp or srt (see tsingest.Open); the first source that answers sets the kind.
	Sources []string
	// Latency is the channel's latency mode: how many segments proxies hide from their
	// player, hence the HOLD-BACK of its playlists and the least number of segments they
	// list (see LatencyMode). "" means LatencyNormal.
	Latency LatencyMode
}

// Config is the gateway's configuration. The zero value of every field but Channels means
// its default; setDefaults applies them and Validate checks the result.
type Config struct {
	Channels []ChannelConfig
	// WindowSegments is how many segments each playlist lists: at least 3 (a negative one
	// is refused). Default 6. A channel whose
	// latency mode needs more lists more: its proxies hide HoldBackSegments of them and
	// players start 3 behind the rest, so a live playlist lists at least
	// HoldBackSegments+4.
	WindowSegments int
	// MaxChannelBytes bounds the bytes a channel holds: all of it for a media playlist, an
	// even share per rendition of a multivariant channel (each rendition always keeps its
	// newest segment, so a channel of N renditions holds at most
	// max(MaxChannelBytes, N × MaxSegmentBytes)). Default 256 MiB.
	MaxChannelBytes int64
	// SegmentDuration is the target duration of the segments the gateway cuts itself from
	// an MPEG-TS source: whole seconds, 1 to 30. Default 2 s.
	SegmentDuration time.Duration
	// MaxSegmentBytes bounds one origin segment. Default 32 MiB.
	MaxSegmentBytes int64
	// PollInterval is how often the origin playlist is fetched. Default 1 s.
	PollInterval time.Duration
	// FailoverAfter is how many consecutive failed polls make the next source take over.
	// Default 3.
	FailoverAfter int
	// MaxBackoff bounds the retry pause after origin failures. Default 10 s.
	MaxBackoff time.Duration
	// OriginTimeout bounds each origin request. Default 10 s.
	OriginTimeout time.Duration
	// WriteTimeout bounds the writing of a segment to a client, plus the time the segment
	// takes at MinWriteRate: a client that stops reading frees its handler and connection
	// after that. Defaults 30 s and 32 KB/s (256 kbit/s).
	WriteTimeout time.Duration
	MinWriteRate int64
	// BusyTransfers is how many segment transfers under way make the uplink count as
	// saturated: then a cell member's fetch of a segment its cell's root is getting is
	// refused (held.go). Default 8; negative: never.
	BusyTransfers int
	// EgressLimit is the gateway's uplink in bytes per second, when known: segment bytes
	// are paced to 85 % of it, a cell root's first (pace.go), and bytes started at 90 % of
	// it within a second make the uplink count as saturated too (held.go). 0: unknown:
	// estimated from the segment transfers' TCP connections, and paced once saturated
	// (uplink.go).
	EgressLimit int64
	// ReportInterval is how often proxies report their counters. Default 10 s.
	ReportInterval time.Duration
	// StatsFlushInterval is how often the gateway adds its own egress to the registry's
	// counters. Default 2 s.
	StatsFlushInterval time.Duration
	// TrackerRate is the tracker calls per second one client address may make, all its
	// proxies together (burst twice that); more get 429. Default 2000: a large office
	// behind one NAT. Each proxy's own calls are limited too (see gateway/tracker).
	TrackerRate float64
	// JoinRate is the new proxies per second one client address may bring (burst ten times
	// that). Default 100.
	JoinRate float64
	// PeerRate is the calls per second one proxy may make (burst 10). Default 1: a proxy
	// makes one call per report interval and one per stream it opens.
	PeerRate float64
	// PeersPerAddress is the proxies (open event streams) one client address may hold at
	// once; more get 429. Default 2000: a campus or carrier-grade NAT behind one address.
	PeersPerAddress int
	// PeerAddrs is which neighbour addresses the swarm admits (swarm.AddrPolicy); the zero
	// value is public addresses only. Proxies on one machine (the demo, tests) need
	// swarm.AddrLoopback, a LAN or site deployment swarm.AddrPrivate.
	PeerAddrs swarm.AddrPolicy
	// OriginAddrs is which addresses origin fetches may reach, besides those of the class of
	// each channel's own configured origin (see ingest.OriginConfig): the zero value, public
	// addresses only. Link-local addresses are never fetched.
	OriginAddrs swarm.AddrPolicy
	// PlayerOrigins are the web origins (scheme://host[:port]) whose pages may play
	// through viewers' proxies (the broadcaster's player pages): announced to proxies in
	// their Hello. Proxies refuse other pages, except the gateway's own (its dashboard).
	PlayerOrigins []string
	// STUNPort is the UDP port on which the gateway's host answers STUN (cmd/rawflow runs
	// the server), announced to proxies; 0: none. STUNAltPort is a second one (0: none),
	// by which proxies tell a symmetric NAT. ICEServers are further STUN and TURN
	// servers announced to proxies; TURN servers without credentials get per-proxy ones
	// from TURNSecret (see tracker.Config).
	STUNPort    int
	STUNAltPort int
	ICEServers  []swarm.ICEServer
	TURNSecret  []byte
	// Seeders is how many proxies of each cell fetch each segment from the gateway (the
	// roots of its stripe, see swarm.Roster). Default 1, at most swarm.MaxSeeders.
	Seeders int
	// SignKey, when set, makes every /live request carry a token signed with it (see
	// Token); nil means playlists and segments are open.
	SignKey []byte
	// AdminToken, when set, guards /metrics, the stats API and every route others add to
	// the gateway's router (the dashboard): requests need it as a bearer token or as the
	// password of HTTP Basic auth (see requireAdmin). "" means they are open. Player,
	// tracker and health routes are never guarded.
	AdminToken string
	// PeerKey signs the peer tokens that authenticate tracker calls (see tracker.TokenTTL).
	// Gateways of a fleet must share it; nil means a random key of this gateway's own.
	PeerKey []byte
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.TrackerRate <= 0 {
		c.TrackerRate = 2000
	}
	if c.JoinRate <= 0 {
		c.JoinRate = 100
	}
	if c.PeerRate <= 0 {
		c.PeerRate = 1
	}
	if c.PeersPerAddress <= 0 {
		c.PeersPerAddress = 2000
	}
	if c.Seeders <= 0 {
		c.Seeders = 1
	}
	if len(c.PeerKey) == 0 {
		c.PeerKey = make([]byte, 32)
		_, _ = rand.Read(c.PeerKey)
	}
	if c.WindowSegments == 0 {
		c.WindowSegments = 6
	}
	if c.MaxChannelBytes <= 0 {
		c.MaxChannelBytes = 256 << 20
	}
	if c.MaxSegmentBytes <= 0 {
		c.MaxSegmentBytes = 32 << 20
	}
	def(&c.PollInterval, time.Second)
	def(&c.SegmentDuration, 2*time.Second)
	def(&c.MaxBackoff, 10*time.Second)
	def(&c.OriginTimeout, 10*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	if c.MinWriteRate <= 0 {
		c.MinWriteRate = 32 << 10
	}
	if c.BusyTransfers == 0 {
		c.BusyTransfers = 8
	}
	def(&c.ReportInterval, 10*time.Second)
	def(&c.StatsFlushInterval, 2*time.Second)
	if c.FailoverAfter <= 0 {
		c.FailoverAfter = 3
	}

	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first problem with the configuration, if any.
func (c *Config) Validate() error {
	if len(c.Channels) == 0 {
		return errors.New("no channel: give at least one --channel NAME=URL")
	}
	seen := map[string]bool{}
	for _, ch := range c.Channels {
		if !swarm.ValidChannel(ch.Name) {
			return fmt.Errorf("channel name %q: want 1-64 of A-Z a-z 0-9 _ -", ch.Name)
		}
		if seen[ch.Name] {
			return fmt.Errorf("channel %q given twice", ch.Name)
		}
		seen[ch.Name] = true
		if _, err := ParseLatencyMode(string(ch.Latency)); err != nil {
			return fmt.Errorf("channel %q: %w", ch.Name, err)
		}
		if len(ch.Sources) == 0 {
			return fmt.Errorf("channel %q: no source", ch.Name)
		}
		for _, src := range ch.Sources {
			u, err := url.Parse(src)
			web := err == nil && (u.Scheme == "http" || u.Scheme == "https")
			switch {
			case !web && (err != nil || !tsingest.IsSourceURL(u)):
				return fmt.Errorf("channel %q: source %q is not an http(s), udp or srt URL", ch.Name, src)
			case web && u.Host == "":
				return fmt.Errorf("channel %q: source %q has no host", ch.Name, src)
			case !web && u.Port() == "":
				return fmt.Errorf("channel %q: source %q has no port", ch.Name, src)
			}
		}
	}
	if len(c.PlayerOrigins) > swarm.MaxAllowOrigins {
		return fmt.Errorf("%d player origins: at most %d", len(c.PlayerOrigins), swarm.MaxAllowOrigins)
	}
	for _, o := range c.PlayerOrigins {
		if _, ok := swarm.ParseOrigin(o); !ok {
			return fmt.Errorf("player origin %q: want scheme://host[:port] (http or https, no path)", o)
		}
	}
	if c.SegmentDuration%time.Second != 0 || c.SegmentDuration < time.Second || c.SegmentDuration > 30*time.Second {
		return fmt.Errorf("segment duration %v: want whole seconds from 1s to 30s", c.SegmentDuration)
	}
	if c.Seeders > swarm.MaxSeeders {
		return fmt.Errorf("seeders %d: want 1-%d", c.Seeders, swarm.MaxSeeders)
	}
	if c.WindowSegments < 3 {
		return fmt.Errorf("window of %d segments: want at least 3", c.WindowSegments)
	}
	if c.MaxChannelBytes < c.MaxSegmentBytes {
		return fmt.Errorf("max channel bytes %d below max segment bytes %d", c.MaxChannelBytes, c.MaxSegmentBytes)
	}
	return nil
}
