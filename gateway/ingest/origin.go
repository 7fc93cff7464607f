package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/rawflow/rawflow/gateway/tsingest"
	"github.com/rawflow/rawflow/internal/httpx"
	"github.com/rawflow/rawflow/playlist"
)

// Errors of origin fetches.
var (
	// ErrTooLarge: an origin body exceeded its size bound.
	ErrTooLarge = httpx.ErrTooLarge
	// ErrOriginStatus: the origin answered with a status other than 2xx, or a range that
	// does not fit.
	ErrOriginStatus = errors.New("origin status")
)

// Origin fetches from broadcasters' origins: every request bounded in time (Timeout) and
// every body in size.
type Origin struct {
	client  *http.Client
	timeout time.Duration
}

// NewOrigin returns an origin client whose requests each take at most timeout.
func NewOrigin(timeout time.Duration) *Origin {
	return &Origin{client: &http.Client{Timeout: timeout}, timeout: timeout}
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
// may serve a stream to one client only); a playlist is read whole, bounded in size and
// time.
func (o *Origin) probe(ctx context.Context, u *url.URL) (body []byte, stream io.ReadCloser, err error) {
	rc, err := tsingest.Open(ctx, u, tsingest.SourceConfig{Timeout: o.timeout})
	if err != nil {
		return nil, nil, err
	}
	head := make([]byte, tsingest.PacketSize+1)
	n, err := io.ReadFull(rc, head)
	if err == nil && tsingest.LooksLikeTS(head) {
		return nil, prefixed{Reader: io.MultiReader(bytes.NewReader(head), rc), Closer: rc}, nil
	}
	defer rc.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	t := time.AfterFunc(o.timeout, func() { _ = rc.Close() })
	defer t.Stop()
	body, err = io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(head[:n]), rc), playlist.MaxPlaylistBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(body) > playlist.MaxPlaylistBytes {
		return nil, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, playlist.MaxPlaylistBytes)
	}
	return body, nil, nil
}

// prefixed reads what was peeked, then the rest of a stream.
type prefixed struct {
	io.Reader
	io.Closer
}
