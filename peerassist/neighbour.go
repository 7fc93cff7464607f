package peerassist

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

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
)

// partial is what a neighbour transfer delivered before it stalled or ran out of time: the
// gateway completes it with a Range request, and the whole is verified.
type partial struct {
	data  []byte
	from  string // the neighbour's peer ID
	group string // and its group, as the lookup gave it
}

// fromNeighbours tries up to NeighbourTries of the holders (see neighbours.pick) until ctx
// ends, abandoning a transfer that delivers no byte for stall, and returns the first segment that matches the digest and size, or nil and the
// longest partial transfer.
func (p *Proxy) fromNeighbours(ctx context.Context, m *member, holders []swarm.Holder, info segInfo, stall time.Duration) (*segment, partial) {
	var part partial
	for range p.cfg.NeighbourTries {
		if ctx.Err() != nil {
			break
		}
		h, ok := p.neigh.pick(holders, p.cfg.Group, p.cfg.Now(), randFloat)
		if !ok {
			break
		}
		start := p.cfg.Now()
		data, answered, err := p.getNeighbour(ctx, h, info, stall)
		now := p.cfg.Now()
		var skip time.Duration
		switch {
		case err == nil:
			p.neigh.done(h.ID, info.size, now.Sub(start), 0, now)
			m.stats.got(delivery{rendition: info.rendition, peers: info.size, group: h.Group})
			return &segment{digest: info.digest, channel: m.channel, data: data}, partial{}
		case errors.Is(err, errIntegrity), errors.Is(err, errHostile):
			m.stats.integrityFailures.Add(1)
			skip = p.cfg.BanFor
			m.report(h.ID)
			p.log.Warn("neighbour sent bad bytes or a redirect; banned and reported", "peer", h.ID, "addr", h.Addr, "err", err)
		case errors.Is(err, errNotNow):
		case ctx.Err() != nil && !answered && h.State != swarm.StateHave:
			// Our deadline, while the neighbour was still fetching the segment itself: not
			// its fault. One that has the segment must answer at once.
		default:
			m.stats.neighbourFailures.Add(1)
			skip = skipAfterFailure
		}
		if fails := p.neigh.done(h.ID, int64(len(data)), now.Sub(start), skip, now); skip == skipAfterFailure && fails%reportAfterFailures == 0 {
			m.report(h.ID) // keeps failing without lying: useless to the swarm, say so
		}
		if skip != p.cfg.BanFor && len(data) > len(part.data) {
			part = partial{data: data, from: h.ID, group: h.Group}
		}
	}
	return nil, part
}

// reportAfterFailures is how many failures in a row make a proxy report a neighbour.
const reportAfterFailures = 3

// getNeighbour fetches one segment from a neighbour and verifies it: exactly the listed
// size, then the digest. A transfer that delivers no byte for stall is abandoned; on a
// stall or when ctx ends, the bytes received so far are returned with the error. The wait
// for the response header is bounded by stall too when the neighbour says it has the
// segment or the fetch is urgent (stall shorter than NeighbourStall); from one still
// fetching it, it may include that fetch. answered reports whether a response header came.
func (p *Proxy) getNeighbour(ctx context.Context, h swarm.Holder, info segInfo, stall time.Duration) (data []byte, answered bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var header *time.Timer
	if h.State == swarm.StateHave || stall < p.cfg.NeighbourStall {
		header = time.AfterFunc(stall, func() { cancel(errStalled) })
	}
	url := "http://" + h.Addr + swarm.NeighbourSegmentPath + info.digest.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := p.peerHTTP.Do(req)
	if header != nil {
		header.Stop()
	}
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	addr := h.Addr
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusNotFound, code == http.StatusServiceUnavailable:
		return nil, true, fmt.Errorf("neighbour %s: %s: %w", addr, resp.Status, errNotNow)
	case code/100 == 3: // a proxy never redirects: this one would point us elsewhere
		return nil, true, fmt.Errorf("neighbour %s: %s: %w", addr, resp.Status, errHostile)
	default:
		return nil, true, fmt.Errorf("neighbour %s: %s", addr, resp.Status)
	}
	// Waiting for the header may include the neighbour's own gateway fetch; from the first
	// body byte on, every gap between bytes is bounded.
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

// handleNeighbour serves a verified segment to another proxy: from the cache, or from a
// fetch already under way here (never starting one). Uploads are capped and queued, and
// each is judged for the uplink self-assessment.
func (p *Proxy) handleNeighbour(c echo.Context) error {
	d, err := playlist.ParseDigest(c.Param("digest"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "bad digest")
	}
	if !p.acquireUpload(c.Request().Context()) {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "too many uploads")
	}
	defer func() { <-p.uploads }()
	seg := p.cache.get(d)
	if seg == nil {
		if f := p.flights.Get(d); f != nil {
			ctx, cancel := context.WithTimeout(c.Request().Context(), p.cfg.GatewayTimeout)
			seg, _ = f.Wait(ctx)
			cancel()
		}
	}
	if seg == nil {
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
	if p.upRate == nil {
		return c.Blob(http.StatusOK, "application/octet-stream", data)
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/octet-stream")
	w.Header().Set(echo.HeaderContentLength, strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
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
