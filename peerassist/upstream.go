package peerassist

// The gateway rung of the fetch ladder: the proxy's requests to its gateway, bounded in
// size and time.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
)

// fromGateway fetches the segment from the gateway, or only the bytes a partial neighbour
// transfer lacks (Range), and checks the whole against the playlist's size and digest.
func (p *Proxy) fromGateway(ctx context.Context, m *member, info segInfo, part partial) (*segment, error) {
	if n := int64(len(part.data)); n > 0 && n < info.size {
		start := p.cfg.Now()
		rest, err := p.gatewayGetRange(ctx, m.gatewayPath(info, p.cfg.Now()), n, info.size)
		if err == nil {
			data := slices.Concat(part.data, rest)
			if int64(len(data)) == info.size && sha256.Sum256(data) == info.digest {
				p.gwEstimate.observe(int64(len(rest)), p.cfg.Now().Sub(start))
				m.stats.got(delivery{rendition: info.rendition, gateway: int64(len(rest)), peers: n, group: part.group})
				m.stats.rangeCompletions.Add(1)
				return &segment{digest: info.digest, channel: m.channel, data: data}, nil
			}
			m.stats.integrityFailures.Add(1)
			p.neigh.done(part.from, false, p.cfg.BanFor, p.cfg.Now())
			m.report(part.from)
			p.log.Warn("neighbour sent bad bytes before stalling; banned", "peer", part.from)
		}
	}
	start := p.cfg.Now()
	data, err := p.gatewaySegment(ctx, m, info)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != info.size || sha256.Sum256(data) != info.digest {
		return nil, fmt.Errorf("gateway segment %s does not match its playlist digest", info.path)
	}
	p.gwEstimate.observe(int64(len(data)), p.cfg.Now().Sub(start))
	m.stats.got(delivery{rendition: info.rendition, gateway: int64(len(data))})
	return &segment{digest: info.digest, channel: m.channel, data: data}, nil
}

// gatewayGet GETs path (with query) from the gateway, bounded in size; in time by
// GatewayTimeout until the response header, then by gatewayStall between body bytes (a
// large segment on a slow link is not cut short, a stuck one is).
func (p *Proxy) gatewayGet(ctx context.Context, path string, limit int64) ([]byte, error) {
	return p.gatewayRead(ctx, path, "", limit)
}

// gatewaySegment GETs a listed segment from the gateway. A 404 for a segment learnt less
// than notYetFor ago means that the gateway does not hold it yet: in a fleet, the event or
// playlist that listed it may come from a gateway a moment ahead of the one a load
// balancer picks for this request. So it is asked again, notYetPause later, until then.
// A 404 for an older one (a gateway restarted on a new window) is final at once, so that
// the player skips the segment rather than wait for it.
func (p *Proxy) gatewaySegment(ctx context.Context, m *member, info segInfo) ([]byte, error) {
	for {
		data, err := p.gatewayGet(ctx, m.gatewayPath(info, p.cfg.Now()), p.cfg.MaxSegmentBytes)
		var he *echo.HTTPError
		if err == nil || !errors.As(err, &he) || he.Code != http.StatusNotFound ||
			p.cfg.Now().Sub(info.learnt) >= notYetFor {
			return data, err
		}
		t := time.NewTimer(notYetPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// A listed segment the gateway answers 404 for is asked again, notYetPause apart, until
// notYetFor after the proxy learnt of it.
const (
	notYetFor   = 2 * time.Second
	notYetPause = 250 * time.Millisecond
)

// gatewayGetRange GETs bytes from..size-1 of a segment from the gateway, as gatewayGet.
func (p *Proxy) gatewayGetRange(ctx context.Context, path string, from, size int64) ([]byte, error) {
	return p.gatewayRead(ctx, path, fmt.Sprintf("bytes=%d-%d", from, size-1), size-from)
}

// gatewayStall ends a gateway transfer that delivers no byte for this long.
const gatewayStall = 3 * time.Second

func (p *Proxy) gatewayRead(ctx context.Context, path, byteRange string, limit int64) ([]byte, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.gateway.ResolveReference(ref).String(), nil)
	if err != nil {
		return nil, err
	}
	if byteRange != "" {
		req.Header.Set("Range", byteRange)
	}
	resp, err := p.gwHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if byteRange != "" {
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return nil, fmt.Errorf("%w: range answered %s", errGatewayStatus, resp.Status)
		}
		resp.StatusCode = http.StatusOK // readBody's contract: the body is what was asked for
	}
	stall := time.AfterFunc(gatewayStall, func() { cancel(errStalled) })
	defer stall.Stop()
	resp.Body = readCloser{&stallReader{r: resp.Body, t: stall, d: gatewayStall}, resp.Body}
	data, err := readBody(resp, limit)
	if c := context.Cause(ctx); err != nil && errors.Is(c, errStalled) {
		err = fmt.Errorf("gateway: %w", c)
	}
	return data, err
}

// readCloser reads from one and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
