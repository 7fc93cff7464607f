package peerassist

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/peerlink"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// Errors of the neighbour rung.
var (
	errStalled   = errors.New("neighbour stalled")
	errIntegrity = errors.New("neighbour bytes do not match the gateway's digest")
	// errHostile: the neighbour answered what no proxy answers (a redirect).
	errHostile = errors.New("neighbour answered with a redirect")
	// errNotNow: the neighbour does not hold the segment, or has no upload slot free; it
	// is not at fault.
	errNotNow = errors.New("neighbour cannot serve it now")
	// errHeaderWait: the neighbour, still getting the segment itself (it said so with a
	// 103), did not answer within the time given to it; the next source is tried.
	errHeaderWait = errors.New("neighbour still getting the segment")
)

// partial is what a neighbour transfer delivered before it stalled or ran out of time: the
// gateway completes it with a Range request, and the whole is verified.
type partial struct {
	data  []byte
	from  string // the neighbour's peer ID
	group string // and its group, as the lookup gave it
}

// fromNeighbours tries the stripe's sources in order (the parent, then the next live
// ancestor), skipping one that failed lately, until ctx ends. A source may still be
// fetching the segment itself (its neighbour port pulls it through): the first may take two
// thirds of the time left before its response header, the last all of it; from the first
// body byte on, a transfer that delivers no byte for stall is abandoned. It returns the
// first segment that matches the digest and size, or nil and the longest partial transfer.
func (p *Proxy) fromNeighbours(ctx context.Context, m *member, sources []swarm.Source, info segInfo, stall time.Duration) (*segment, partial, missCause) {
	var part partial
	cause := missTime // no source tried before the time ran out
	for i, src := range sources {
		if ctx.Err() != nil {
			break
		}
		if !p.neigh.usable(src.ID, p.cfg.Now()) {
			if cause == missTime {
				cause = missResting
			}
			continue
		}
		wait := time.Duration(0) // the last source: until ctx ends
		if dl, ok := ctx.Deadline(); ok && i < len(sources)-1 {
			wait = time.Until(dl) * 2 / 3
		}
		p.routes.note(m.channel, src)
		var path string
		data, answered, err := p.getNeighbour(ctx, m, src, info, stall, wait, &path)
		now := p.cfg.Now()
		var skip time.Duration
		switch {
		case err == nil:
			p.neigh.done(src.ID, true, 0, now)
			m.stats.got(delivery{rendition: info.rendition, peers: info.size, group: src.Group, path: path})
			return &segment{digest: info.digest, channel: m.channel, data: data}, partial{}, 0
		case errors.Is(err, errIntegrity), errors.Is(err, errHostile):
			cause = missFailed
			m.stats.integrityFailures.Add(1)
			skip = p.cfg.BanFor
			m.report(src.ID)
			p.log.Warn("neighbour sent bad bytes or a redirect; banned and reported", "peer", src.ID, "addr", src.Addr, "err", err)
		case errors.Is(err, errLinkPending):
			// Not its fault (a NAT's address, a link still coming up), but the next
			// fetches should not wait for it either: skipped as after a failure, not
			// counted, never reported, until its path is known (neighbours.known) unless
			// it became known meanwhile.
			cause = missPending
			if p.routes.pending(src.ID) {
				p.neigh.rest(src.ID, skipAfterFailure, now)
			}
			continue
		case errors.Is(err, errNotNow):
			cause = missBusy
		case answered && (errors.Is(err, errHeaderWait) || ctx.Err() != nil || isTimeout(err)):
			// The source said it was getting the segment (103), and is not done in the
			// time we had (our context's, or the transport's bound on the same budget,
			// whichever fired first): not its fault.
			cause = missLate
		default:
			cause = missFailed
			m.stats.neighbourFailures.Add(1)
			skip = skipAfterFailure
			p.log.Debug("neighbour failed", "peer", src.ID, "addr", src.Addr, "err", err)
		}
		if fails := p.neigh.done(src.ID, false, skip, now); skip == skipAfterFailure && fails%reportAfterFailures == 0 {
			m.report(src.ID) // keeps failing without lying: useless to the swarm, say so
		}
		if skip != p.cfg.BanFor && len(data) > len(part.data) {
			part = partial{data: data, from: src.ID, group: src.Group}
		}
	}
	return nil, part, cause
}

// reportAfterFailures is how many failures in a row make a proxy report a neighbour.
const reportAfterFailures = 3

// getNeighbour fetches one segment from a neighbour and verifies it: exactly the listed
// size, then the digest. A neighbour that does not hold the segment yet but is getting it
// answers 103 Early Hints at once (see handleNeighbour): one that answers nothing within
// stall has failed; after a 103, the wait for the response is bounded by wait (0: by ctx
// alone). From the first body byte on, a transfer that delivers no byte for stall is
// abandoned, and on a stall or when ctx ends the bytes received so far are returned with
// the error. answered reports whether a response (a 103 included) came.
func (p *Proxy) getNeighbour(ctx context.Context, m *member, src swarm.Source, info segInfo, stall, wait time.Duration, via *string) (data []byte, answered bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex // guards header and hinted
	hinted := false
	header := time.AfterFunc(stall, func() { cancel(errStalled) })
	var gotConn atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		gotConn.Store(true)
		mu.Lock()
		defer mu.Unlock()
		*via = cmp.Or(peerlink.ConnType(ci.Conn), "direct")
	}, Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		if code == http.StatusEarlyHints && !hinted { // the neighbour is getting it: give it time
			hinted = true
			header.Stop()
			if wait > 0 {
				header = time.AfterFunc(wait, func() { cancel(errHeaderWait) })
			}
		}
		return nil
	}}
	path := swarm.NeighbourSegmentPath + info.digest.String()
	cred, ok := swarm.SignNeighbourRequest(m.swarmKey, m.channel, path, m.gatewayNow(p.cfg.Now()))
	if !ok { // no swarm key yet (no hello): no neighbour would serve this proxy
		return nil, false, fmt.Errorf("neighbour %s: no swarm key: %w", src.ID, errNotNow)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, "http://"+peerHost(src.ID)+path, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set(swarm.NeighbourAuthHeader, cred)
	req.Header.Set(hopsHeader, strconv.Itoa(hopsOf(ctx)+1))
	resp, err := p.peerHTTP.Do(req)
	mu.Lock()
	header.Stop()
	answered = hinted
	mu.Unlock()
	if err != nil {
		if !gotConn.Load() && (p.routes.linkPending(src.ID) || p.routes.probeUndecided(src.ID)) {
			return nil, false, fmt.Errorf("neighbour %s: %w", src.ID, errLinkPending) // not its fault
		}
		if c := context.Cause(ctx); errors.Is(c, errHeaderWait) || errors.Is(c, errStalled) {
			err = c
		}
		return nil, answered, err
	}
	defer resp.Body.Close()
	addr := src.Addr
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusNotFound, code == http.StatusServiceUnavailable,
		code == http.StatusUnauthorized, code == http.StatusForbidden: // keys out of step: not its fault
		return nil, true, fmt.Errorf("neighbour %s: %s: %w", addr, resp.Status, errNotNow)
	case code/100 == 3: // a proxy never redirects: this one would point us elsewhere
		return nil, true, fmt.Errorf("neighbour %s: %s: %w", addr, resp.Status, errHostile)
	default:
		return nil, true, fmt.Errorf("neighbour %s: %s", addr, resp.Status)
	}
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()
	data, err = readExactly(&stallReader{r: resp.Body, t: timer, d: stall}, info.size)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, errStalled) {
			err = c
		}
		return data, true, fmt.Errorf("neighbour %s: %w", addr, err)
	}
	if sha256.Sum256(data) != info.digest {
		return nil, true, fmt.Errorf("neighbour %s: %w", addr, errIntegrity)
	}
	return data, true, nil
}

// Pull-through hops. A neighbour port asked for a segment it knows but does not hold
// fetches it through its own plan, on behalf of the asker; the request says how many such
// hops it has come through (hopsHeader), and a port does not pull through past maxHops, so
// that plans that disagree for a moment (a fleet's gateways reading a roster apart) cannot
// send requests round in circles.
const (
	hopsHeader = "RawFlow-Hops"
	maxHops    = 8
	// unknownWait bounds how long the neighbour port waits to learn of a segment it is
	// asked for: the event that announces it may reach this proxy a moment after the
	// asker's request.
	unknownWait = time.Second
)

type hopsKey struct{}

// withHops marks ctx as serving a request that came through hops hops.
func withHops(ctx context.Context, hops int) context.Context {
	return context.WithValue(ctx, hopsKey{}, hops)
}

func hopsOf(ctx context.Context) int {
	h, _ := ctx.Value(hopsKey{}).(int)
	return h
}

// readExactly reads exactly size bytes: a single byte more is an integrity error, and so
// is an early end of the body. On a read error, it returns what it read so far.
func readExactly(r io.Reader, size int64) ([]byte, error) {
	data := make([]byte, 0, size)
	for int64(len(data)) < size {
		n, err := r.Read(data[len(data):size])
		data = data[:len(data)+n]
		switch {
		case int64(len(data)) == size:
		case err == io.EOF:
			return nil, fmt.Errorf("%w: got %d bytes, want %d", errIntegrity, len(data), size)
		case err != nil:
			return data, err
		}
	}
	var one [1]byte
	if n, _ := r.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("%w: more than %d bytes", errIntegrity, size)
	}
	return data, nil
}

// stallReader pushes its stall timer back on every read that delivers bytes.
type stallReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (s *stallReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if n > 0 {
		s.t.Reset(s.d)
	}
	return n, err
}

// Upload queueing: a request that finds every upload slot taken waits for one, at most
// uploadQueueWait, unless maxQueued requests wait already (then 503 at once).
const (
	uploadQueueWait = time.Second
	maxQueuedFactor = 4 // maxQueued = maxQueuedFactor × MaxUploads
)

// handleNeighbour serves a verified segment to another proxy: from the cache, from a fetch
// already under way here, or — for a segment the gateway listed to this proxy — by fetching
// it through this proxy's own plan (pull-through: a member of a stripe's tree asks its
// parent, which asks its own, up to the root, which fetches from the gateway), within
// maxHops. Uploads are capped and queued, and each is judged for the uplink self-assessment.
func (p *Proxy) handleNeighbour(c echo.Context) error {
	d, err := playlist.ParseDigest(c.Param("digest"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "bad digest")
	}
	channel, err := p.admit(c.Request())
	if err != nil {
		p.neighbourRefused.Add(1)
		code := http.StatusForbidden
		if errors.Is(err, swarm.ErrNoCredential) {
			code = http.StatusUnauthorized
		}
		return echo.NewHTTPError(code, "neighbour ports serve proxies the gateway admitted to the channel: "+err.Error())
	}
	hops, _ := strconv.Atoi(c.Request().Header.Get(hopsHeader))
	if !p.acquireUpload(c.Request().Context()) {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "too many uploads")
	}
	defer func() { <-p.uploads }()
	seg := p.cache.get(d)
	if seg == nil {
		// Not held yet: tell the asker this proxy is getting it, so that it waits rather
		// than taking it for a dead neighbour.
		c.Response().Writer.WriteHeader(http.StatusEarlyHints)
		seg = p.held(c.Request().Context(), channel, d, hops)
	}
	if seg == nil || seg.channel != channel {
		return echo.NewHTTPError(http.StatusNotFound, "not held")
	}
	start := p.cfg.Now()
	err = p.upload(c, seg.data)
	m := p.member(seg.channel)
	m.stats.bytesUploaded.Add(c.Response().Size)
	_, td := m.playing(start)
	missed := err != nil || p.cfg.Now().Sub(start) > max(time.Second, td/2)
	if p.uplink.record(missed, p.cfg.Now()) {
		p.log.Warn("uploads keep missing their deadline; not offering uploads for a while", "for", quietFor)
	}
	return err
}

// held returns the verified segment with digest d for a neighbour admitted to channel:
// cached, fetched already under way, or fetched now through the plan when the gateway
// listed it to this proxy's member of channel and the request came through fewer than
// maxHops hops; nil otherwise.
func (p *Proxy) held(ctx context.Context, channel string, d playlist.Digest, hops int) *segment {
	if seg := p.cache.get(d); seg != nil {
		return seg
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.GatewayTimeout)
	defer cancel()
	if f := p.flights.Get(d); f != nil {
		seg, _ := f.Wait(ctx)
		return seg
	}
	if hops >= maxHops || !p.advertising() {
		return nil
	}
	kctx, cancelKnown := context.WithTimeout(ctx, unknownWait)
	m, info, ok := p.awaitKnown(kctx, channel, d)
	cancelKnown()
	if !ok {
		return nil
	}
	_, td := m.playing(p.cfg.Now())
	seg, _ := p.fetch(withHops(ctx, hops), m, info, p.cfg.Now().Add(2*td))
	return seg
}

// acquireUpload takes an upload slot, waiting for one within the queue's bounds.
func (p *Proxy) acquireUpload(ctx context.Context) bool {
	select {
	case p.uploads <- struct{}{}:
		return true
	default:
	}
	if p.queued.Add(1) > int64(maxQueuedFactor*p.cfg.MaxUploads) {
		p.queued.Add(-1)
		return false
	}
	defer p.queued.Add(-1)
	t := time.NewTimer(uploadQueueWait)
	defer t.Stop()
	select {
	case p.uploads <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// uploadChunk is the unit in which a rate-limited upload is written.
const uploadChunk = 32 << 10

// upload writes data, paced by the upload limit when there is one.
func (p *Proxy) upload(c echo.Context, data []byte) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/octet-stream")
	// With its length (echo's Blob sends none, and net/http then chunks a body this size):
	// the asker reads it straight into its buffer, not through the transport's 4 KiB reader
	// and a chunk parser.
	w.Header().Set(echo.HeaderContentLength, strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if p.upRate == nil {
		_, err := w.Write(data)
		return err
	}
	for len(data) > 0 {
		n := min(len(data), uploadChunk)
		if err := p.upRate.WaitN(c.Request().Context(), n); err != nil {
			return err
		}
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		w.Flush()
		data = data[n:]
	}
	return nil
}

// admit checks a neighbour request's swarm credential (swarm/admission.go) against this
// proxy's keys of the channel it names, on the gateway's clock, and returns the channel.
func (p *Proxy) admit(r *http.Request) (string, error) {
	v := r.Header.Get(swarm.NeighbourAuthHeader)
	channel, _, _ := strings.Cut(v, " ")
	p.mu.Lock()
	m := p.members[channel]
	p.mu.Unlock()
	if m == nil {
		if v == "" {
			return "", swarm.ErrNoCredential
		}
		return "", swarm.ErrBadCredential // not a channel this proxy follows
	}
	keys := func(ch string, w int64) (swarm.ChannelKey, bool) {
		if ch != channel {
			return swarm.ChannelKey{}, false
		}
		return m.swarmKey(w)
	}
	return swarm.CheckNeighbourRequest(keys, v, r.URL.Path, m.gatewayNow(p.cfg.Now()))
}
