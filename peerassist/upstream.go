package peerassist

// The gateway rung of the fetch ladder: the proxy's requests to its gateway, bounded in
// size and time.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/swarm"
)

// gatewayAsk is how a segment fetch presents itself to the gateway (swarm.FetchHeader): as
// its cell's root for the segment's stripe, as a member whose swarm did not deliver in
// time (the gateway may then hold it back while its uplink is saturated, see errHeld), or
// as nothing (a proxy with no plan, or a second ask after a refusal: never refused).
type gatewayAsk struct {
	role  string // swarm.FetchRoot, swarm.FetchMember, or "" for nothing
	group string
	dl    *deadline // FetchMember: when the player needs the segment
	// sources are a member's sources for the segment's stripe, to wait for when the
	// gateway holds the fetch back.
	sources []swarm.Source
}

// header sets the ask's headers on h at now.
func (a gatewayAsk) header(h http.Header, now time.Time) {
	if a.role == "" {
		return
	}
	h.Set(swarm.FetchHeader, a.role)
	h.Set(swarm.GroupHeader, a.group)
	if a.role == swarm.FetchMember && a.dl != nil {
		at, _ := a.dl.get()
		h.Set(swarm.NeedHeader, strconv.FormatInt(max(0, at.Sub(now).Milliseconds()), 10))
	}
}

// errHeld: the gateway, its uplink saturated, refused a member's fetch of a segment its
// cell's root is getting (503 with swarm.HeldHeader): the swarm will deliver it.
var errHeld = errors.New("gateway: the cell is getting the segment, wait for the swarm")

// fromGateway fetches the segment from the gateway, or only the bytes a partial neighbour
// transfer lacks (Range), and checks the whole against the playlist's size and digest.
func (p *Proxy) fromGateway(ctx context.Context, m *member, info segInfo, part partial, ask gatewayAsk) (*segment, error) {
	if n := int64(len(part.data)); n > 0 && n < info.size {
		start := p.cfg.Now()
		rest, err := p.gatewaySegment(ctx, m, info, n, gatewayAsk{})
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
	data, err := p.gatewaySegment(ctx, m, info, 0, ask)
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
	data, err := p.gatewayRead(ctx, path, "", limit, gatewayAsk{})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// gatewaySegment GETs bytes from..size-1 of a listed segment from the gateway (all of it
// when from is 0). A transfer cut short (it stalled, its connection broke) is resumed with
// Range from the bytes received, up to maxResumes times: the bytes the gateway's uplink
// already carried are not asked again. A 404 for a segment learnt less than notYetFor ago
// means that the gateway does not hold it yet: in a fleet, the event or playlist that
// listed it may come from a gateway a moment ahead of the one a load balancer picks for
// this request. So it is asked again, notYetPause later, until then. A 404 for an older
// one (a gateway restarted on a new window) is final at once, so that the player skips the
// segment rather than wait for it.
func (p *Proxy) gatewaySegment(ctx context.Context, m *member, info segInfo, from int64, ask gatewayAsk) ([]byte, error) {
	var got []byte
	resumes := 0
	for {
		at := from + int64(len(got))
		byteRange, limit := "", p.cfg.MaxSegmentBytes
		if at > 0 {
			byteRange, limit = fmt.Sprintf("bytes=%d-%d", at, info.size-1), info.size-at
		}
		data, err := p.gatewayRead(ctx, m.gatewayPath(info, p.cfg.Now()), byteRange, limit, ask)
		if got == nil {
			got = data // the whole segment, most often: no copy
		} else {
			got = append(got, data...)
		}
		if err == nil {
			return got, nil
		}
		var he *echo.HTTPError
		switch {
		case len(data) > 0 && from+int64(len(got)) < info.size && resumes < maxResumes && ctx.Err() == nil:
			resumes++
			m.stats.gatewayResumes.Add(1)
			continue
		case !errors.As(err, &he) || he.Code != http.StatusNotFound || p.cfg.Now().Sub(info.learnt) >= notYetFor:
			return nil, err
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

// maxResumes bounds the Range requests that resume one gateway transfer cut short.
const maxResumes = 4

// A listed segment the gateway answers 404 for is asked again, notYetPause apart, until
// notYetFor after the proxy learnt of it.
const (
	notYetFor   = 2 * time.Second
	notYetPause = 250 * time.Millisecond
)

// gatewayStall ends a gateway transfer that delivers no byte for this long.
const gatewayStall = 3 * time.Second

// gatewayRead GETs path from the gateway (byteRange, if set, as Range: the answer must be
// a 206), presenting the request as ask says. On an error after the body began, it returns
// the bytes read so far with the error.
func (p *Proxy) gatewayRead(ctx context.Context, path, byteRange string, limit int64, ask gatewayAsk) ([]byte, error) {
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
	ask.header(req.Header, p.cfg.Now())
	resp, err := p.gwHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(swarm.HeldHeader) != "":
		resp.Body.Close()
		return nil, errHeld
	case byteRange != "" && resp.StatusCode != http.StatusPartialContent:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: range answered %s", errGatewayStatus, resp.Status)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return readBody(resp, limit) // the error, mapped
	case resp.ContentLength > limit:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %w: Content-Length %d > %d", errGatewayStatus, httpx.ErrTooLarge, resp.ContentLength, limit)
	}
	defer resp.Body.Close()
	stall := time.AfterFunc(gatewayStall, func() { cancel(errStalled) })
	defer stall.Stop()
	data, err := httpx.ReadAll(&stallReader{r: resp.Body, t: stall, d: gatewayStall}, resp.ContentLength, limit)
	switch {
	case err != nil && errors.Is(context.Cause(ctx), errStalled):
		return data, fmt.Errorf("gateway: %w", context.Cause(ctx))
	case err != nil:
		return data, fmt.Errorf("gateway: %w", err)
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("%w: %w: more than %d bytes", errGatewayStatus, httpx.ErrTooLarge, limit)
	}
	return data, nil
}
