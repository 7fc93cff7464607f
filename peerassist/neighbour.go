package peerassist

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// Errors of the neighbour rung.
var (
	errStalled   = errors.New("neighbour stalled")
	errIntegrity = errors.New("neighbour bytes do not match the gateway's digest")
)

// health tracks neighbours passively: a neighbour that failed is skipped until badUntil.
type health struct {
	mu       sync.Mutex // guards badUntil
	badUntil map[string]time.Time
}

func (h *health) ok(id string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, found := h.badUntil[id]
	if found && !now.Before(until) {
		delete(h.badUntil, id)
		return true
	}
	return !found
}

func (h *health) ban(id string, until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.badUntil) > 10000 { // bounded: forget the oldest bans wholesale
		clear(h.badUntil)
	}
	h.badUntil[id] = until
}

// fromNeighbours tries up to NeighbourTries healthy holders within NeighbourBudget and
// returns the first segment that matches the digest and size, or nil.
func (p *Proxy) fromNeighbours(ctx context.Context, m *member, holders []swarm.Holder, info segInfo) *segment {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.NeighbourBudget)
	defer cancel()
	tries := 0
	for _, h := range holders {
		if tries == p.cfg.NeighbourTries || ctx.Err() != nil {
			break
		}
		if !p.health.ok(h.ID, p.cfg.Now()) {
			continue
		}
		tries++
		data, err := p.getNeighbour(ctx, h.Addr, info)
		if err == nil {
			m.stats.bytesFromPeers.Add(int64(len(data)))
			m.stats.segmentsFromPeers.Add(1)
			return &segment{digest: info.digest, channel: m.channel, data: data}
		}
		if errors.Is(err, errIntegrity) {
			m.stats.integrityFailures.Add(1)
			p.log.Warn("neighbour sent bad bytes; banned", "peer", h.ID, "addr", h.Addr, "err", err)
		} else {
			m.stats.neighbourFailures.Add(1)
		}
		p.health.ban(h.ID, p.cfg.Now().Add(p.cfg.BanFor))
	}
	return nil
}

// getNeighbour fetches one segment from a neighbour and verifies it: exactly the listed
// size, then the digest. A transfer that delivers no byte for NeighbourStall is abandoned.
func (p *Proxy) getNeighbour(ctx context.Context, addr string, info segInfo) ([]byte, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	url := "http://" + addr + swarm.NeighbourSegmentPath + info.digest.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.peerHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("neighbour %s: %s", addr, resp.Status)
	}
	// Waiting for the header may include the neighbour's own gateway fetch; from the first
	// body byte on, every gap between bytes is bounded.
	stall := time.AfterFunc(p.cfg.NeighbourStall, func() { cancel(errStalled) })
	defer stall.Stop()
	data, err := readExactly(&stallReader{r: resp.Body, t: stall, d: p.cfg.NeighbourStall}, info.size)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, errStalled) {
			err = c
		}
		return nil, fmt.Errorf("neighbour %s: %w", addr, err)
	}
	if sha256.Sum256(data) != info.digest {
		return nil, fmt.Errorf("neighbour %s: %w", addr, errIntegrity)
	}
	return data, nil
}

// readExactly reads exactly size bytes: fewer is an error, and so is a single byte more.
func readExactly(r io.Reader, size int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("%w: got %d bytes, want %d", errIntegrity, len(data), size)
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

// handleNeighbour serves a verified segment to another proxy: from the cache, or from a
// fetch already under way here (never starting one). Uploads are capped.
func (p *Proxy) handleNeighbour(c echo.Context) error {
	d, err := playlist.ParseDigest(c.Param("digest"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "bad digest")
	}
	select {
	case p.uploads <- struct{}{}:
		defer func() { <-p.uploads }()
	default:
		return echo.NewHTTPError(http.StatusServiceUnavailable, "too many uploads")
	}
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
	err = p.upload(c, seg.data)
	p.member(seg.channel).stats.bytesUploaded.Add(c.Response().Size)
	return err
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
