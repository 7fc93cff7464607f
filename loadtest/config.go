package loadtest

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Config is one benchmark run. GatewayURL, Channel and Duration are required; the zero
// value of every other field is its default.
type Config struct {
	// GatewayURL is the gateway's base URL, e.g. http://127.0.0.1:8080.
	GatewayURL string
	// Channel is the channel every viewer plays.
	Channel string
	// Viewers is how many assisted viewers play: each a proxy and a player on it.
	Viewers int
	// Direct is how many players play the gateway directly: the join-time baseline.
	Direct int
	// Duration is how long the run lasts, ramp included.
	Duration time.Duration
	// Ramp is the time the viewers' joins are spread over; zero means a tenth of Duration,
	// at most 10 s.
	Ramp time.Duration
	// Churn is the share (0-1) of the assisted viewers replaced during the run, spread from
	// the end of the ramp to shortly before the end; every other one leaves abruptly, its
	// connections cut mid-transfer.
	Churn float64
	// Slow is the share (0-1) of the assisted viewers whose uploads are capped at SlowRate.
	Slow float64
	// SlowRate is the slow viewers' upload cap in bytes per second; zero means no cap.
	SlowRate int64
	// Variants are the variant indexes the players pick in a multivariant playlist, round
	// robin; empty means the first variant.
	Variants []int
	// PeerTransport is the proxies' (peerassist.Config.PeerTransport); empty: auto.
	PeerTransport string
	// PortMapping lets each proxy ask the router to forward its neighbour port, as a
	// viewer's proxy does (peerassist.Config.NoPortMapping): off by default, so that a
	// benchmark on a real LAN does not fill its router's table.
	PortMapping bool
	// Group is the locality group of every proxy; empty means none.
	Group string
	// PeerHost is the IP the proxies' neighbour ports listen on and advertise; empty means
	// 127.0.0.1. An unspecified address (0.0.0.0) is advertised as the gateway sees this
	// host.
	PeerHost string
	// GatewayRoots are the CAs trusted for an https:// GatewayURL, by the proxies and the
	// direct players (peerassist.Config.GatewayRoots); nil means the system's.
	GatewayRoots *x509.CertPool
	// CMCD makes the players send CMCD (their buffer length) with segment requests.
	CMCD bool
	// Progress, if set, is called about every ProgressEvery with the figures so far; it runs
	// on Run's goroutine. nil means no progress.
	Progress func(Report)
	// Logger is the proxies' logger; nil means slog.Default().
	Logger *slog.Logger
}

// ProgressEvery is how often Run calls Config.Progress.
const ProgressEvery = 5 * time.Second

func (c *Config) setDefaults() {
	if c.Ramp <= 0 {
		c.Ramp = min(10*time.Second, c.Duration/10)
	}
	if c.PeerHost == "" {
		c.PeerHost = "127.0.0.1"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a configuration Run cannot run.
func (c *Config) Validate() error {
	switch {
	case c.GatewayURL == "":
		return errors.New("loadtest: no gateway URL")
	case !swarm.ValidChannel(c.Channel):
		return fmt.Errorf("loadtest: channel %q: want 1-64 of A-Z a-z 0-9 _ -", c.Channel)
	case c.Viewers < 0 || c.Direct < 0 || c.Viewers+c.Direct == 0:
		return fmt.Errorf("loadtest: %d assisted and %d direct viewers: want some, none negative", c.Viewers, c.Direct)
	case c.Duration <= 0:
		return fmt.Errorf("loadtest: duration %s: want more than 0", c.Duration)
	case c.Churn < 0 || c.Churn > 1 || c.Slow < 0 || c.Slow > 1:
		return fmt.Errorf("loadtest: churn %g, slow %g: want shares, 0-1", c.Churn, c.Slow)
	case c.SlowRate < 0:
		return fmt.Errorf("loadtest: slow rate %d: want 0 or more", c.SlowRate)
	case c.PeerHost != "" && net.ParseIP(c.PeerHost) == nil:
		return fmt.Errorf("loadtest: peer host %q: want an IP address", c.PeerHost)
	}
	for _, v := range c.Variants {
		if v < 0 {
			return fmt.Errorf("loadtest: variant %d: want 0 or more", v)
		}
	}
	return nil
}
