package tsingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SourceConfig says how to connect to a source.
type SourceConfig struct {
	// Timeout bounds connecting and the silence between two reads: a source that sends
	// nothing for this long is dropped (Read fails with ErrSilent). Default 10 s.
	Timeout time.Duration
	// DialContext dials an http(s) source's connections; nil means a net.Dialer's.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// CheckRedirect is the redirect policy of an http(s) source (http.Client.CheckRedirect);
	// nil means Go's default (at most 10).
	CheckRedirect func(req *http.Request, via []*http.Request) error
}

// ErrSilent reports a source that sent nothing for SourceConfig.Timeout.
var ErrSilent = errors.New("source silent")

// ErrScheme reports a URL that names no source kind this package reads.
var ErrScheme = errors.New("not an MPEG-TS source URL (http, https, udp or srt)")

// IsSourceURL reports whether u names a source only Open reads (udp, srt); http and https
// URLs may name an HLS playlist as well, which the first bytes tell apart (see LooksLikeTS).
func IsSourceURL(u *url.URL) bool { return u.Scheme == "udp" || u.Scheme == "srt" }

// LooksLikeTS reports whether b, the first bytes of a response, are MPEG-TS: a sync byte,
// and another one packet later when b is that long.
func LooksLikeTS(b []byte) bool {
	return len(b) > 0 && b[0] == syncByte && (len(b) <= PacketSize || b[PacketSize] == syncByte)
}

// Open connects to a continuous MPEG-TS source and returns the stream:
//
//	http://HOST/PATH, https://…              GET; the response body is the stream (chunked or not)
//	udp://[@]HOST:PORT[?iface=NAME]          datagrams to HOST:PORT: unicast (HOST may be empty:
//	                                         any address), or a multicast group, joined on the
//	                                         interface NAME (default: the system's choice);
//	                                         RTP-wrapped TS (RFC 2250) is unwrapped
//	srt://HOST:PORT[?streamid=S&latency=MS]  SRT, caller mode
//	srt://[HOST]:PORT?mode=listener          SRT, listener mode: waits for one caller
//
// Reads fail with ErrSilent after cfg.Timeout without a byte; Close ends the connection.
func Open(ctx context.Context, u *url.URL, cfg SourceConfig) (io.ReadCloser, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	var rc io.ReadCloser
	var err error
	switch u.Scheme {
	case "http", "https":
		rc, err = openHTTP(ctx, u, cfg)
	case "udp":
		rc, err = openUDP(u)
	case "srt":
		rc, err = openSRT(ctx, u, cfg.Timeout)
	default:
		return nil, fmt.Errorf("%w: %s", ErrScheme, u.Redacted())
	}
	if err != nil {
		return nil, err
	}
	return newWatchdog(rc, cfg.Timeout), nil
}

// httpStream is a streaming GET: its context ends with Close.
type httpStream struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (h *httpStream) Close() error {
	h.cancel()
	return h.ReadCloser.Close()
}

func openHTTP(ctx context.Context, u *url.URL, cfg SourceConfig) (io.ReadCloser, error) {
	// No overall timeout: the stream has no end. Connecting and the response header are
	// bounded here, the silence between reads by the watchdog.
	timeout := cfg.Timeout
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		DisableKeepAlives:     true, // one stream per transport: nothing to keep, no idle connection left behind
		Proxy:                 http.ProxyFromEnvironment,
	}
	if cfg.DialContext != nil {
		tr.DialContext, tr.Proxy = cfg.DialContext, nil // a proxy would be dialled instead of the source
	}
	client := &http.Client{Transport: tr, CheckRedirect: cfg.CheckRedirect}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("source %s: HTTP %d", u.Redacted(), resp.StatusCode)
	}
	return &httpStream{ReadCloser: resp.Body, cancel: cancel}, nil
}

// maxDatagram bounds one UDP datagram (the largest UDP payload).
const maxDatagram = 65535

// udpStream reads TS from datagrams, unwrapping RTP.
type udpStream struct {
	conn    *net.UDPConn
	buf     []byte
	pending []byte // what the last Read could not take
}

func openUDP(u *url.URL) (io.ReadCloser, error) {
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("udp source %q: %w", u.Redacted(), err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("udp source %q: bad port", u.Redacted())
	}
	addr := &net.UDPAddr{Port: port}
	if host != "" {
		if addr.IP = net.ParseIP(host); addr.IP == nil {
			return nil, fmt.Errorf("udp source %q: %q is not an IP address", u.Redacted(), host)
		}
	}
	var conn *net.UDPConn
	if addr.IP != nil && addr.IP.IsMulticast() {
		var ifi *net.Interface
		if name := u.Query().Get("iface"); name != "" {
			if ifi, err = net.InterfaceByName(name); err != nil {
				return nil, fmt.Errorf("udp source %q: interface: %w", u.Redacted(), err)
			}
		}
		conn, err = net.ListenMulticastUDP("udp", ifi, addr)
	} else {
		conn, err = net.ListenUDP("udp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("udp source %q: %w", u.Redacted(), err)
	}
	_ = conn.SetReadBuffer(4 << 20) // a burst of a few Mbit/s must not overflow the socket
	return &udpStream{conn: conn, buf: make([]byte, maxDatagram)}, nil
}

func (s *udpStream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		n, err := s.conn.Read(s.buf)
		if err != nil {
			return 0, err
		}
		s.pending = unwrapRTP(s.buf[:n])
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *udpStream) Close() error { return s.conn.Close() }

// unwrapRTP returns the TS in a datagram: the datagram itself, or the payload of an RTP
// packet (version 2, any CSRC count and header extension) that carries TS.
func unwrapRTP(d []byte) []byte {
	if len(d) == 0 || d[0] == syncByte || d[0]>>6 != 2 || len(d) < 12 {
		return d
	}
	hdr := 12 + 4*int(d[0]&0x0F)
	if d[0]&0x10 != 0 && len(d) >= hdr+4 { // header extension
		hdr += 4 + 4*(int(d[hdr+2])<<8|int(d[hdr+3]))
	}
	if hdr < len(d) && d[hdr] == syncByte {
		return d[hdr:]
	}
	return d
}

// watchdog closes a source that stays silent for timeout, which ends a Read blocked on it.
type watchdog struct {
	rc       io.ReadCloser
	timeout  time.Duration
	timer    *time.Timer
	timedOut atomic.Bool
	once     sync.Once
}

func newWatchdog(rc io.ReadCloser, timeout time.Duration) *watchdog {
	w := &watchdog{rc: rc, timeout: timeout}
	w.timer = time.AfterFunc(timeout, func() {
		w.timedOut.Store(true)
		_ = w.closeSource()
	})
	return w
}

func (w *watchdog) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	if n > 0 {
		w.timer.Reset(w.timeout)
	}
	if err != nil && w.timedOut.Load() {
		err = fmt.Errorf("%w for %v", ErrSilent, w.timeout)
	}
	return n, err
}

func (w *watchdog) Close() error {
	w.timer.Stop()
	return w.closeSource()
}

func (w *watchdog) closeSource() error {
	var err error
	w.once.Do(func() { err = w.rc.Close() })
	return err
}
