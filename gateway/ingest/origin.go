package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/gateway/tsingest"
	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// Errors of origin fetches.
var (
	// ErrTooLarge: an origin body exceeded its size bound.
	ErrTooLarge = httpx.ErrTooLarge
	// ErrOriginStatus: the origin answered with a status other than 2xx, or a range that
	// does not fit.
	ErrOriginStatus = errors.New("origin status")
	// ErrOriginPolicy: a fetch the origin policy refuses: a scheme other than http(s), too
	// many redirects, or an address outside the allowed class (see OriginConfig).
	ErrOriginPolicy = errors.New("origin fetch refused")
)

// maxRedirects bounds the redirects one origin fetch follows.
const maxRedirects = 5

// OriginConfig says how an Origin fetches.
type OriginConfig struct {
	// Timeout bounds each request, the discovery probe and each connection attempt.
	Timeout time.Duration
	// Addrs is the class of addresses fetches may reach (swarm.AddrPolicy, the gateway's
	// --origin-addrs): the zero value, public unicast addresses only. Whatever it says,
	// link-local (169.254.0.0/16: cloud metadata; fe80::/10), unspecified, multicast and
	// other special addresses are never dialled.
	Addrs swarm.AddrPolicy
	// Sources are the channel's configured origins. Dialling one of them is always allowed,
	// and so is every address of the class of theirs (as resolved when dialled): an origin
	// on loopback may name or redirect to loopback, one on a private network private
	// addresses.
	Sources []*url.URL
}

// Origin fetches from broadcasters' origins: every request bounded in time (Timeout) and
// every body in size, over http or https only, following at most maxRedirects redirects,
// and dialling only addresses the policy allows: the address checked is the one dialled,
// after name resolution, so a name that resolves to an internal address is refused too.
// No proxy from the environment is used (it would be dialled instead of the origin).
type Origin struct {
	client  *http.Client
	timeout time.Duration
	addrs   swarm.AddrPolicy
	sources map[string]bool // the configured origins' host:port
	// sourceIPs are the configured origins given as IP addresses: their class counts
	// before they are first dialled.
	sourceIPs []netip.Addr
	// sourceClass is the widest class (swarm.AddrPolicy) the configured origins' addresses
	// were seen in; -1 until one of them is dialled.
	sourceClass atomic.Int64
	// classify gives an address's class (ok false: never dialled); nil means addrClass.
	// Tests set it to take their 127.0.0.1 origins for public ones.
	classify func(netip.Addr) (swarm.AddrPolicy, bool)
}

// NewOrigin returns an origin client configured by cfg.
func NewOrigin(cfg OriginConfig) *Origin {
	o := &Origin{timeout: cfg.Timeout, addrs: cfg.Addrs, sources: map[string]bool{}}
	o.sourceClass.Store(-1)
	for _, u := range cfg.Sources {
		o.sources[hostPort(u)] = true
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			o.sourceIPs = append(o.sourceIPs, a.Unmap())
		}
	}
	o.client = &http.Client{
		Timeout:       cfg.Timeout,
		CheckRedirect: checkRedirect,
		Transport: &http.Transport{
			DialContext:           o.dial,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
			ForceAttemptHTTP2:     true,
		},
	}
	return o
}

// hostPort is u's host and port, the port defaulted from the scheme, as a transport dials it.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// checkScheme refuses URLs that are not http(s).
func checkScheme(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %s: scheme %q: want http or https", ErrOriginPolicy, u.Redacted(), u.Scheme)
	}
	return nil
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrOriginPolicy, maxRedirects)
	}
	if err := checkScheme(req.URL); err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	return nil
}

// addrClass is the narrowest policy that admits a (ok false: none does).
func addrClass(a netip.Addr) (swarm.AddrPolicy, bool) {
	for p := swarm.AddrPublic; p <= swarm.AddrLoopback; p++ {
		if p.Allows(a) {
			return p, true
		}
	}
	return 0, false
}

// raise widens the configured origins' class to c.
func (o *Origin) raise(c swarm.AddrPolicy) {
	for {
		old := o.sourceClass.Load()
		if int64(c) <= old || o.sourceClass.CompareAndSwap(old, int64(c)) {
			return
		}
	}
}

// dial resolves addr's host and dials the first of its addresses the policy allows: any
// address of a configured origin's own; else one of a class no wider than --origin-addrs
// or the configured origins' class.
func (o *Origin) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	classify := o.classify
	if classify == nil {
		classify = addrClass
	}
	for _, ip := range o.sourceIPs {
		if class, ok := classify(ip); ok {
			o.raise(class)
		}
	}
	configured := o.sources[addr]
	var allowed []netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap()
		class, ok := classify(ip)
		if configured && ok {
			o.raise(class)
		}
		if configured || (ok && int64(class) <= max(int64(o.addrs), o.sourceClass.Load())) {
			allowed = append(allowed, ip)
		}
	}
	if len(allowed) == 0 {
		return nil, fmt.Errorf("%w: %s resolves to %v, outside the allowed origin addresses (--origin-addrs %s; link-local never)",
			ErrOriginPolicy, host, ips, o.addrs)
	}
	d := net.Dialer{Timeout: o.timeout}
	var errs []error
	for _, ip := range allowed {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// sourceConfig is how tsingest connects to an http(s) stream under the same policy.
func (o *Origin) sourceConfig() tsingest.SourceConfig {
	return tsingest.SourceConfig{Timeout: o.timeout, DialContext: o.dial, CheckRedirect: checkRedirect}
}

// Get fetches u, at most limit bytes.
func (o *Origin) Get(ctx context.Context, u *url.URL, limit int64) ([]byte, error) {
	return o.get(ctx, u, "", limit)
}

// GetRange fetches u, or only the byte range r of it (nil: all of it), at most limit bytes.
// A 206 must carry exactly the range; an origin that ignores Range and answers 200 is read
// up to the range's end and cut.
func (o *Origin) GetRange(ctx context.Context, u *url.URL, r *playlist.ByteRange, limit int64) ([]byte, error) {
	if r == nil {
		return o.Get(ctx, u, limit)
	}
	if r.Length > limit || r.Length <= 0 || r.Offset < 0 {
		return nil, fmt.Errorf("%w: byte range %d@%d", ErrTooLarge, r.Length, r.Offset)
	}
	b, partial, err := o.do(ctx, u, fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1), r.Offset+r.Length)
	switch {
	case err != nil:
		return nil, err
	case partial && int64(len(b)) == r.Length:
		return b, nil
	case !partial && int64(len(b)) == r.Offset+r.Length: // the whole object, read up to the range's end
		return b[r.Offset:], nil
	}
	return nil, fmt.Errorf("%w: range %d@%d answered with %d bytes", ErrOriginStatus, r.Length, r.Offset, len(b))
}

func (o *Origin) get(ctx context.Context, u *url.URL, rng string, limit int64) ([]byte, error) {
	b, _, err := o.do(ctx, u, rng, limit)
	return b, err
}

// do GETs u (with a Range header unless rng is empty), at most limit bytes; partial
// reports a 206. A 200 to a range request is read up to limit (the range's end) and no
// further.
func (o *Origin) do(ctx context.Context, u *url.URL, rng string, limit int64) (body []byte, partial bool, err error) {
	if err = checkScheme(u); err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	if rng != "" && resp.StatusCode == http.StatusOK {
		// The whole object: only its first limit bytes matter.
		defer resp.Body.Close()
		if body, err = httpx.ReadAll(io.LimitReader(resp.Body, limit), -1, limit); err != nil {
			return nil, false, err
		}
		return body, false, nil
	}
	partial = resp.StatusCode == http.StatusPartialContent
	body, err = httpx.ReadBody(resp, limit)
	if se := (*httpx.StatusError)(nil); errors.As(err, &se) {
		return nil, false, fmt.Errorf("%w: %s", ErrOriginStatus, se.Status)
	}
	return body, partial, err
}

// probe connects to an http(s) source and tells a continuous MPEG-TS stream from a
// playlist by its first bytes: a stream is returned open, to be read on (media servers
// may serve a stream to one client only); a playlist is read whole, bounded in size. The
// whole probe, connecting included, takes at most the origin timeout: an origin that
// trickles its first bytes cannot hold discovery up.
func (o *Origin) probe(ctx context.Context, u *url.URL) (body []byte, stream io.ReadCloser, err error) {
	if err = checkScheme(u); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(o.timeout, cancel)
	fail := func(err error) ([]byte, io.ReadCloser, error) {
		if !timer.Stop() {
			err = fmt.Errorf("probe: no answer within %v: %w", o.timeout, err)
		}
		cancel()
		return nil, nil, err
	}
	rc, err := tsingest.Open(ctx, u, o.sourceConfig())
	if err != nil {
		return fail(err)
	}
	head := make([]byte, tsingest.PacketSize+1)
	n, err := io.ReadFull(rc, head)
	if err == nil && tsingest.LooksLikeTS(head) {
		if !timer.Stop() {
			_ = rc.Close()
			return fail(context.DeadlineExceeded)
		}
		// The stream goes on: its context ends when it is closed.
		return nil, prefixed{Reader: io.MultiReader(bytes.NewReader(head), rc), Closer: closeBoth{rc, cancel}}, nil
	}
	defer rc.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	body, err = io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(head[:n]), rc), playlist.MaxPlaylistBytes+1))
	if err != nil {
		return fail(err)
	}
	if !timer.Stop() {
		return fail(context.DeadlineExceeded) // the body may have been cut short
	}
	cancel()
	if len(body) > playlist.MaxPlaylistBytes {
		return nil, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, playlist.MaxPlaylistBytes)
	}
	return body, nil, nil
}

// closeBoth closes a stream, then ends its context.
type closeBoth struct {
	rc     io.Closer
	cancel context.CancelFunc
}

func (c closeBoth) Close() error {
	err := c.rc.Close()
	c.cancel()
	return err
}

// prefixed reads what was peeked, then the rest of a stream.
type prefixed struct {
	io.Reader
	io.Closer
}
