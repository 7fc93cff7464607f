package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Errors the gateway classifies.
var (
	// ErrTooLarge: an origin body exceeded its size bound.
	ErrTooLarge = errors.New("body exceeds size limit")
	// ErrOriginStatus: the origin answered with a non-2xx status.
	ErrOriginStatus = errors.New("origin status")
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}
