package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/rawflow/rawflow/internal/httpx"
)

// Errors the gateway classifies.
var (
	// ErrTooLarge: an origin body exceeded its size bound.
	ErrTooLarge = errors.New("body exceeds size limit")
	// ErrOriginStatus: the origin answered with a non-2xx status.
	ErrOriginStatus = errors.New("origin status")
	// errOriginFetch: an on-demand origin fetch failed.
	errOriginFetch = errors.New("origin fetch failed")
	// ErrUnknownChannel: no channel of that name.
	ErrUnknownChannel = errors.New("unknown channel")
)

// getBounded GETs u with client, bounded by timeout and, in size, by limit.
func getBounded(ctx context.Context, client *http.Client, timeout time.Duration, u *url.URL, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	return readBounded(resp, limit)
}

// getBoundedRange GETs length bytes of u from offset on: a 206 must carry exactly them; an
// origin that ignores Range and answers 200 is read up to the range's end and cut.
func getBoundedRange(ctx context.Context, client *http.Client, timeout time.Duration, u *url.URL, offset, length int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		b, err := readBounded(resp, offset+length)
		if err != nil {
			return nil, err
		}
		if int64(len(b)) < offset+length {
			return nil, fmt.Errorf("%w: range %d@%d beyond the %d-byte body", ErrOriginStatus, length, offset, len(b))
		}
		return b[offset:], nil
	}
	if resp.StatusCode != http.StatusPartialContent {
		return readBounded(resp, 0) // reports the status
	}
	resp.StatusCode = http.StatusOK // a 206 is this range's whole body
	b, err := readBounded(resp, length)
	if err == nil && int64(len(b)) != length {
		err = fmt.Errorf("%w: range of %d bytes answered with %d", ErrOriginStatus, length, len(b))
	}
	return b, err
}

// readBounded reads resp's body up to limit bytes; more is ErrTooLarge. It closes the body.
func readBounded(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("%w: %s", ErrOriginStatus, resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d > %d", ErrTooLarge, resp.ContentLength, limit)
	}
	b, err := httpx.ReadAll(resp.Body, resp.ContentLength, limit)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}
