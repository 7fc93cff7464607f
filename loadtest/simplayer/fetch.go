package simplayer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/playlist"
)

// Request failures, wrapped with details.
var (
	errStatus   = errors.New("unexpected HTTP status")
	errTooLarge = errors.New("body over the size limit")
	errRange    = errors.New("byte range not served")
)

// fetch downloads segment s, after its init section when that is new, and buffers it.
// A segment that fails every try, or whose init section does, is given up.
func (p *Player) fetch(ctx context.Context, s playlist.OriginSegment) {
	u, err := p.base.Parse(s.URI)
	if err != nil {
		p.pb.failed()
		p.pb.dropped()
		return
	}
	ok := s.Init == nil || p.fetchInit(ctx, s.Init)
	d := duration(s)
	var data []byte
	if ok {
		data, ok = p.tryGet(ctx, func() *url.URL { return p.segmentURL(u, d) }, s.Range, p.segmentTimeout())
	}
	switch {
	case ok:
		start := p.starts[s.Seq]
		p.pb.add(time.Now(), span{start, start + d}, len(data))
		if p.cfg.OnSegment != nil {
			p.cfg.OnSegment(u.String(), data)
		}
	case ctx.Err() == nil:
		p.pb.dropped()
	}
}

// fetchInit downloads init section in unless it was the last one fetched, and reports
// whether it is at hand.
func (p *Player) fetchInit(ctx context.Context, in *playlist.Init) bool {
	u, err := p.base.Parse(in.URI)
	if err != nil {
		p.pb.failed()
		return false
	}
	key := u.String()
	if in.Range != nil {
		key += fmt.Sprintf(" %d@%d", in.Range.Length, in.Range.Offset)
	}
	if key == p.initURI {
		return true
	}
	data, ok := p.tryGet(ctx, func() *url.URL { return u }, in.Range, p.segmentTimeout())
	if !ok {
		return false
	}
	p.initURI = key
	p.pb.addBytes(len(data))
	return true
}

// tryGet gets target() (asked again on each try) up to segmentTries times, counting each
// failure, and reports whether one try succeeded.
func (p *Player) tryGet(ctx context.Context, target func() *url.URL, rng *playlist.ByteRange, timeout time.Duration) ([]byte, bool) {
	for try := range segmentTries {
		if try > 0 && !sleep(ctx, retryDelay) {
			return nil, false
		}
		data, _, err := p.get(ctx, target(), timeout, p.cfg.MaxSegmentBytes, rng)
		if err == nil {
			return data, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		p.pb.failed()
	}
	return nil, false
}

// segmentTimeout bounds one segment request: segmentTimeout target durations.
func (p *Player) segmentTimeout() time.Duration {
	return segmentTimeout * targetDuration(p.pl)
}

// segmentURL returns u with the CMCD query parameter hls.js would add for a segment of
// duration d, or u itself when CMCD is off.
func (p *Player) segmentURL(u *url.URL, d time.Duration) *url.URL {
	if !p.cfg.CMCD {
		return u
	}
	bl := p.pb.buffered(time.Now()).Milliseconds() / 100 * 100
	sid := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.cfg.SessionID)
	v := fmt.Sprintf(`bl=%d,d=%d,ot=v,sid="%s"`, bl, d.Round(time.Millisecond).Milliseconds(), sid)
	c := *u
	if c.RawQuery != "" {
		c.RawQuery += "&"
	}
	c.RawQuery += "CMCD=" + url.QueryEscape(v)
	return &c
}

// get fetches u within timeout, reading at most limit bytes of body; rng, if set, asks for
// that byte range. It returns the body and the URL that served it (after redirects).
func (p *Player) get(ctx context.Context, u *url.URL, timeout time.Duration, limit int64, rng *playlist.ByteRange) ([]byte, *url.URL, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	ranged := rng != nil && rng.Length > 0
	if ranged {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(rng.Offset, 10)+"-"+strconv.FormatInt(rng.Offset+rng.Length-1, 10))
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && (!ranged || resp.StatusCode != http.StatusPartialContent) {
		return nil, nil, fmt.Errorf("%w: %s from %s", errStatus, resp.Status, u.Redacted())
	}
	body, err := httpx.ReadAll(resp.Body, resp.ContentLength, limit) // one allocation when the length is known
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", u.Redacted(), err)
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("%w: %s over %d bytes", errTooLarge, u.Redacted(), limit)
	}
	if ranged {
		if body, err = cut(body, rng, resp.StatusCode == http.StatusOK); err != nil {
			return nil, nil, fmt.Errorf("%w: %s", err, u.Redacted())
		}
	}
	final := u
	if resp.Request != nil && resp.Request.URL != nil {
		final = resp.Request.URL
	}
	return body, final, nil
}

// cut returns rng's bytes of body, which is the whole resource when whole is set (a server
// that ignored the Range header) and the range alone otherwise.
func cut(body []byte, rng *playlist.ByteRange, whole bool) ([]byte, error) {
	switch {
	case !whole && int64(len(body)) == rng.Length:
		return body, nil
	case whole && rng.Offset+rng.Length <= int64(len(body)):
		return body[rng.Offset : rng.Offset+rng.Length], nil
	}
	return nil, errRange
}

// pickVariant returns the URI of variant i (clamped) of multivariant playlist data.
func pickVariant(data []byte, i int) (*url.URL, error) {
	if _, err := playlist.ParseMultivariant(data); err != nil {
		return nil, err
	}
	uris := variantURIs(data)
	if len(uris) == 0 { // ParseMultivariant requires one; kept as a guard
		return nil, errors.New("no variant")
	}
	return url.Parse(uris[min(i, len(uris)-1)])
}

// variantURIs returns the URI lines of the EXT-X-STREAM-INF variants, in order (not the
// EXT-X-MEDIA or I-frame renditions).
func variantURIs(data []byte) []string {
	var uris []string
	want := false
	for l := range bytes.Lines(data) {
		line := strings.TrimSpace(string(l))
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			want = true
		case line == "", strings.HasPrefix(line, "#"):
		case want:
			uris = append(uris, line)
			want = false
		}
	}
	return uris
}
