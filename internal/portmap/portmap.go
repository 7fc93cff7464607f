// Package portmap asks the router in front of this machine to forward a TCP port from its
// public address (NAT-PMP, RFC 6886; UPnP Internet Gateway Device, versions 1 and 2), so
// that a proxy behind a home router can be dialled from the internet like a host with an
// open port: no WebRTC set-up, no TURN relay. Many home routers offer one of the two;
// carrier-grade NAT and office firewalls do not, and there the swarm's other paths remain.
//
// Keep holds one mapping for as long as its context lasts: it finds a router that answers
// (NAT-PMP first: one UDP exchange with the default gateway; then UPnP: an SSDP search of
// the LAN), asks for the port, renews the lease at half its life, and removes the mapping
// when the context ends. A mapping is reported only when its public address is usable
// (Config.Usable): a router behind another NAT (a carrier's) maps a port on an address no
// one outside can reach.
package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/rawflow/rawflow/swarm"
)

// Methods a mapping was made with.
const (
	NATPMP = "nat-pmp"
	UPnP   = "upnp"
)

// Mapping is a port the router forwards: External (its public address and port) to this
// machine's port.
type Mapping struct {
	External netip.AddrPort
	Method   string // NATPMP or UPnP
	// Lifetime is the lease the router granted (0: until removed, UPnP routers that take
	// only permanent mappings).
	Lifetime time.Duration

	internal uint16 // the port on this machine
}

// Valid reports whether m holds a mapping.
func (m Mapping) Valid() bool { return m.External.IsValid() }

// Config says what to map.
type Config struct {
	// Port is the TCP port on this machine to forward.
	Port uint16
	// Lifetime is the lease asked for. Default 2 h (RFC 6886's recommendation); renewed at
	// half of what the router grants.
	Lifetime time.Duration
	// Timeout bounds each exchange with a router (a NAT-PMP request with its retries, an
	// SSDP search, a SOAP call). Default 3 s.
	Timeout time.Duration
	// Retry is the wait after no router answered or a mapping failed, doubled each time up
	// to 16 times Retry. Default 1 min.
	Retry time.Duration
	// Usable says whether a mapping's public address can be dialled from outside; nil:
	// swarm.AddrPublic's (not private, not carrier-grade NAT space, not special).
	Usable func(netip.Addr) bool
	// Description names the mapping in the router's table. Default "rawflow".
	Description string
	// Logger; nil means slog.Default().
	Logger *slog.Logger

	// finders are the ways to find a router, tried in order; nil means NAT-PMP then UPnP.
	finders []finder
}

// router is a router that maps ports with one method.
type router interface {
	// add maps the internal port for lifetime, asking for the external port want, and
	// returns the mapping (the router may give another external port).
	add(ctx context.Context, internal, want uint16, lifetime time.Duration, description string) (Mapping, error)
	// remove deletes m, within removalTimeout whether ctx has ended or not.
	remove(ctx context.Context, m Mapping) error
}

// finder looks for a router of one method; it returns an error when none answers.
type finder func(ctx context.Context, timeout time.Duration) (router, error)

func (c *Config) setDefaults() {
	if c.Lifetime <= 0 {
		c.Lifetime = 2 * time.Hour
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Retry <= 0 {
		c.Retry = time.Minute
	}
	if c.Usable == nil {
		c.Usable = swarm.AddrPublic.Allows
	}
	if c.Description == "" {
		c.Description = "rawflow"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.finders == nil {
		c.finders = []finder{findNATPMP, findUPnP}
	}
}

// minRenewal bounds how often a mapping is renewed, whatever lease the router grants;
// removalTimeout bounds a removal (at the end, Keep's context has ended).
const (
	minRenewal     = 10 * time.Second
	removalTimeout = time.Second
)

// removalContext is the context of a removal: ctx's values, not its end (Keep's has ended
// when it removes its mapping), and removalTimeout.
func removalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), removalTimeout)
}

// errUnusable: the router mapped the port on an address that cannot be dialled from outside.
var errUnusable = errors.New("the router's public address cannot be reached from outside (another NAT in front of it?)")

// Keep maps cfg.Port on the router and holds the mapping until ctx ends, then removes it.
// It calls changed with each mapping it gains or that changes, and with the zero Mapping
// when it loses one (a renewal failed); never after it returns.
func Keep(ctx context.Context, cfg Config, changed func(Mapping)) {
	cfg.setDefaults()
	log := cfg.Logger.With("port", cfg.Port)
	var (
		r       router
		held    Mapping
		retry   = cfg.Retry
		failing bool
	)
	defer func() {
		if held.Valid() && r != nil {
			if err := r.remove(ctx, held); err != nil { // ctx has ended: remove bounds itself
				log.Debug("port mapping: removal failed; the lease will lapse", "external", held.External, "err", err)
			}
		}
	}()
	for ctx.Err() == nil {
		var err error
		if r == nil {
			r, err = find(ctx, cfg)
		}
		var m Mapping
		if err == nil {
			want := cfg.Port // the same external port, or the one held (a renewal)
			if held.Valid() {
				want = held.External.Port()
			}
			m, err = mapOn(ctx, r, cfg, want)
		}
		wait := retry
		if err == nil {
			if m.External != held.External || m.Method != held.Method {
				if held.Valid() {
					log.Info("port mapping changed", "external", m.External, "was", held.External, "method", m.Method)
				} else {
					log.Info("port mapped on the router", "external", m.External, "method", m.Method, "lease", m.Lifetime)
				}
				changed(m)
			}
			held = m
			retry, failing = cfg.Retry, false
			// Renewed at half the lease granted, never later than half the lease asked
			// (a router that reboots forgets it; a long lease would hide that), nor more
			// often than minRenewal. A permanent mapping is checked as often.
			wait = min(max(m.Lifetime/2, minRenewal), cfg.Lifetime/2)
			if m.Lifetime == 0 {
				wait = cfg.Lifetime / 2
			}
		} else {
			if ctx.Err() != nil { // ended during a renewal: the deferred removal undoes what is held
				break
			}
			if held.Valid() {
				log.Warn("port mapping lost", "external", held.External, "err", err)
				held = Mapping{}
				changed(Mapping{})
			} else if !failing {
				log.Info("no port mapping; neighbours behind other NATs reach this proxy over WebRTC", "err", err)
			}
			failing = true
			r = nil // look for the router again: it may have restarted or changed
			retry = min(2*retry, 16*cfg.Retry)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// find returns the first router that answers, trying cfg.finders in order.
func find(ctx context.Context, cfg Config) (router, error) {
	var errs []error
	for _, f := range cfg.finders {
		r, err := f(ctx, cfg.Timeout)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// mapOn asks r for the mapping and checks that its address is usable; an unusable one is
// removed at once.
func mapOn(ctx context.Context, r router, cfg Config, want uint16) (Mapping, error) {
	actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	m, err := r.add(actx, cfg.Port, want, cfg.Lifetime, cfg.Description)
	if err != nil {
		return Mapping{}, err
	}
	if !m.External.IsValid() || m.External.Port() == 0 {
		return Mapping{}, fmt.Errorf("%s: the router answered no external address and port", m.Method)
	}
	if !cfg.Usable(m.External.Addr()) {
		_ = r.remove(actx, m)
		return Mapping{}, fmt.Errorf("%s: %s: %w", m.Method, m.External.Addr(), errUnusable)
	}
	return m, nil
}
