package peerassist

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Config is the proxy's configuration. The zero value of every field but GatewayURL means
// its default; setDefaults applies them and Validate checks the result.
type Config struct {
	// GatewayURL is the gateway's base URL, e.g. http://gw.example:8080, or
	// https://gw.example for a gateway serving HTTPS, whose certificate every request to it
	// (event streams, reports, playlists, segments) verifies against GatewayRoots.
	GatewayURL string
	// GatewayRoots are the certificate authorities trusted for an https:// gateway; nil
	// means the system's.
	GatewayRoots *x509.CertPool
	// AdvertiseAddr is the neighbour port's address as host:port for other proxies to dial;
	// an empty host means "the address the gateway sees". Empty with NoUpload.
	AdvertiseAddr string
	// Group is the locality group (site) the proxy belongs to; empty means none.
	Group string
	// CacheBytes bounds the segment cache. Default 256 MiB.
	CacheBytes int64
	// NoUpload makes the proxy a leech: it never serves neighbours.
	NoUpload bool
	// NeighbourBudget bounds the whole neighbour rung of one fetch (lookups, waiting for a
	// seeder's own gateway fetch, transfers), whatever the player's deadline. Default 8 s.
	NeighbourBudget time.Duration
	// NeighbourStall ends a neighbour transfer that delivers no byte for this long. Default 1 s.
	NeighbourStall time.Duration
	// NeighbourTries is how many holders are tried before the gateway. Default 2.
	NeighbourTries int
	// BanFor is how long a neighbour that sent bad bytes (or failed) is skipped. Default 30 s.
	BanFor time.Duration
	// GatewayTimeout bounds the wait for each gateway response's header, and each playlist
	// request as a whole. Default 10 s.
	GatewayTimeout time.Duration
	// MaxSegmentBytes bounds one segment from anyone. Default 32 MiB.
	MaxSegmentBytes int64
	// UploadLimit caps the bytes per second uploaded to neighbours, all uploads together;
	// zero means no cap.
	UploadLimit int64
	// MaxUploads caps concurrent uploads to neighbours; more get 503. Default 8.
	MaxUploads int
	// IdleLeave is how long a channel may go without player requests before the proxy
	// leaves its swarm. Default 60 s.
	IdleLeave time.Duration
	// AllowOrigins are the web origins (scheme://host[:port]) whose pages may read what the
	// player port serves (CORS, Private Network Access), besides the gateway's own origin
	// and those the gateway announces; "*" allows any page. Nil: those two only.
	AllowOrigins []string
	// OutageGrace is how long after the gateway last served a live playlist the proxy
	// serves its copy while the gateway cannot be reached (at least three target
	// durations). Default 20 s.
	OutageGrace time.Duration
	// PeerTransport is how neighbours are reached: TransportAuto (the default: TCP where a
	// source's address can be dialled, else a WebRTC link set up through the gateway),
	// TransportDirect (TCP only) or TransportICE (WebRTC for every source that takes it).
	PeerTransport string
	// NoPortMapping keeps the proxy from asking the router to forward the neighbour port
	// (NAT-PMP, UPnP; see Node), which it does when the port is bound on an unspecified or
	// private address and AdvertiseAddr is not given.
	NoPortMapping bool
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	noPrefetch bool // unit tests of the fetch ladder drive every fetch themselves
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 256 << 20
	}
	def(&c.NeighbourBudget, 8*time.Second)
	def(&c.NeighbourStall, time.Second)
	def(&c.BanFor, 30*time.Second)
	def(&c.GatewayTimeout, 10*time.Second)
	def(&c.IdleLeave, 60*time.Second)
	def(&c.OutageGrace, 20*time.Second)
	if c.NeighbourTries <= 0 {
		c.NeighbourTries = 2
	}
	if c.MaxSegmentBytes <= 0 {
		c.MaxSegmentBytes = 32 << 20
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = 8
	}
	if c.PeerTransport == "" {
		c.PeerTransport = TransportAuto
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
	u, err := url.Parse(c.GatewayURL)
	if c.GatewayURL == "" {
		return errors.New("no gateway: give --gateway URL")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gateway %q is not an http(s) URL", c.GatewayURL)
	}
	if !c.NoUpload && (c.PeerTransport != TransportICE || c.AdvertiseAddr != "") {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("advertise address %q: %w", c.AdvertiseAddr, err)
		}
	}
	for _, o := range c.AllowOrigins {
		if !validOrigin(o) {
			return fmt.Errorf("allowed origin %q: want scheme://host[:port] (http or https, no path) or *", o)
		}
	}
	if c.Group != "" && !swarm.ValidGroup(c.Group) {
		return fmt.Errorf("group %q: want at most 64 of letters, digits, '-', '_' and '.'", c.Group)
	}
	switch c.PeerTransport {
	case TransportAuto, TransportDirect, TransportICE:
	default:
		return fmt.Errorf("peer transport %q: want %s, %s or %s", c.PeerTransport, TransportAuto, TransportDirect, TransportICE)
	}
	if c.UploadLimit < 0 {
		return fmt.Errorf("upload limit %d: want a positive rate or 0 for none", c.UploadLimit)
	}
	if c.CacheBytes < c.MaxSegmentBytes {
		return fmt.Errorf("cache of %d bytes cannot hold one segment of up to %d bytes", c.CacheBytes, c.MaxSegmentBytes)
	}
	return nil
}

// checkNeighbourAddr checks, before the proxy dials it, an address a plan gave for a
// neighbour: an IP address and port, never unspecified, link-local or multicast.
func (c *Config) checkNeighbourAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("neighbour address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || port == "" || port == "0" || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
		return fmt.Errorf("neighbour address %q: not one to dial", addr)
	}
	return nil
}
