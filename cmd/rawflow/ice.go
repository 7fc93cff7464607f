package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/rawflow/rawflow/peerlink"
	"github.com/rawflow/rawflow/swarm"
)

// defaultSTUN is --stun-listen's default: STUN's own port.
const defaultSTUN = ":3478"

// iceOpts are the gateway's flags for proxies' WebRTC links: its own STUN server, and
// further STUN and TURN servers it announces.
type iceOpts struct {
	stunListen, turnSecret *string
	servers                listFlag
}

func (o *iceOpts) register(fs *flag.FlagSet) {
	o.stunListen = fs.String("stun-listen", defaultSTUN, "UDP address on which the gateway answers STUN, so that proxies behind NATs find the address the internet sees them at and reach each other over WebRTC, and on the next port too (by the two, a proxy tells a symmetric NAT, whose viewers are then planned with their own site only); 'off': none (if the default port is taken, the gateway says so and goes on without)")
	fs.Var(&o.servers, "ice-server", "a STUN or TURN server proxies use besides the gateway's STUN: stun:HOST:PORT, turn:HOST:PORT[?transport=udp|tcp] or turns:…; repeatable, at most 8; a TURN server gets per-proxy credentials from --turn-secret")
	o.turnSecret = fs.String("turn-secret", "", "secret shared with the --ice-server TURN servers (coturn: use-auth-secret, static-auth-secret=SECRET): each proxy gets a username EXPIRY:PEER-ID and its HMAC, valid 12 h")
}

// stun is the gateway's STUN server, listening; nil when off. alt, on the next port (nil
// when that was taken), lets proxies tell a symmetric NAT: it maps their two requests, from
// one socket, to two public ports.
type stun struct {
	pc, alt       net.PacketConn
	port, altPort int
}

func (s *stun) run(ctx context.Context) error {
	if s.alt == nil {
		return peerlink.ServeSTUN(ctx, s.pc)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	alt := make(chan error, 1)
	go func() { alt <- peerlink.ServeSTUN(ctx, s.alt) }()
	err := peerlink.ServeSTUN(ctx, s.pc)
	cancel() // the alternate port ends with the main one
	return errors.Join(err, <-alt)
}

func (s *stun) close() {
	_ = s.pc.Close()
	if s.alt != nil {
		_ = s.alt.Close()
	}
}

// open checks the flags and binds the STUN port. A taken default port is not an error: the
// gateway goes on without (several gateways on one machine, or a STUN server there already).
func (o *iceOpts) open(ctx context.Context, log *slog.Logger) (*stun, []swarm.ICEServer, error) {
	servers, err := parseICEServers(o.servers)
	if err != nil {
		return nil, nil, err
	}
	if *o.turnSecret != "" && !hasTURN(servers) {
		return nil, nil, errors.New("--turn-secret: no --ice-server is a TURN server (turn: or turns:)")
	}
	if *o.stunListen == "off" || *o.stunListen == "" {
		return nil, servers, nil
	}
	// IPv4 (peers behind NATs are), unless an IPv6 address is given: on an IPv4 socket the
	// server answers from the address each request came to (see peerlink.ServeSTUN).
	network := "udp4"
	if host, _, perr := net.SplitHostPort(*o.stunListen); perr == nil && strings.Contains(host, ":") {
		network = "udp6"
	}
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, network, *o.stunListen)
	if err != nil {
		if *o.stunListen == defaultSTUN && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("STUN port taken: the gateway answers no STUN (proxies behind NATs need an --ice-server then); give --stun-listen another port, or off", "addr", defaultSTUN)
			return nil, servers, nil
		}
		return nil, nil, fmt.Errorf("--stun-listen %s: %w", *o.stunListen, err)
	}
	srv := &stun{pc: pc, port: pc.LocalAddr().(*net.UDPAddr).Port}
	altAddr := net.JoinHostPort(stunHost(*o.stunListen), "0")
	if !strings.HasSuffix(*o.stunListen, ":0") { // a chosen port: the next one
		altAddr = net.JoinHostPort(stunHost(*o.stunListen), strconv.Itoa(srv.port+1))
	}
	if srv.alt, err = (&net.ListenConfig{}).ListenPacket(ctx, network, altAddr); err != nil {
		log.Warn("STUN's alternate port taken: proxies cannot tell a symmetric NAT (they are planned as if behind a cone NAT)", "addr", altAddr, "err", err)
		srv.alt = nil
	} else {
		srv.altPort = srv.alt.LocalAddr().(*net.UDPAddr).Port
	}
	return srv, servers, nil
}

// stunHost is the host part of a --stun-listen address ("" for all addresses).
func stunHost(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	return host
}

// parseICEServers checks --ice-server URLs.
func parseICEServers(urls []string) ([]swarm.ICEServer, error) {
	if len(urls) > swarm.MaxICEServers {
		return nil, fmt.Errorf("--ice-server: at most %d, got %d", swarm.MaxICEServers, len(urls))
	}
	var out []swarm.ICEServer
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Opaque == "" {
			return nil, fmt.Errorf("--ice-server %q: want stun:HOST:PORT or turn:HOST:PORT[?transport=udp|tcp]", s)
		}
		switch u.Scheme {
		case "stun", "stuns", "turn", "turns":
		default:
			return nil, fmt.Errorf("--ice-server %q: scheme %q: want stun, stuns, turn or turns", s, u.Scheme)
		}
		if _, _, err := net.SplitHostPort(u.Opaque); err != nil {
			return nil, fmt.Errorf("--ice-server %q: want HOST:PORT after the scheme: %w", s, err)
		}
		if t := u.Query().Get("transport"); t != "" && t != "udp" && t != "tcp" {
			return nil, fmt.Errorf("--ice-server %q: transport %q: want udp or tcp", s, t)
		}
		out = append(out, swarm.ICEServer{URLs: []string{s}})
	}
	return out, nil
}

func hasTURN(servers []swarm.ICEServer) bool {
	for _, s := range servers {
		if strings.HasPrefix(s.URLs[0], "turn") {
			return true
		}
	}
	return false
}
