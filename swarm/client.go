package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxResponseBytes bounds every tracker response body a Client reads but the event stream.
const maxResponseBytes = 64 << 10

// ErrRefused marks a tracker call refused for its rate (429): the proxy uses the gateway
// until it may call again.
var ErrRefused = errors.New("refused: too many calls")

// Client calls a gateway's tracker API. It is what proxies use; they never talk to Redis.
type Client struct {
	base *url.URL
	http *http.Client
	// timeout bounds each call but the event stream.
	timeout time.Duration
}

// NewClient returns a client for the gateway at base (e.g. http://gw:8080) over hc (the
// proxy's gateway client, so that tracker calls share its connections); timeout bounds
// each call but the event stream (zero: 2 s). hc must not set a Timeout of its own, which
// would cut the stream.
func NewClient(base *url.URL, hc *http.Client, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Client{base: base, http: hc, timeout: timeout}
}

// streamIdle ends an event stream that delivers nothing, not even a ping, for this long.
const streamIdle = 45 * time.Second

// Events opens the peer's event stream for sub — as peer id (with its token) when id is
// set, else as a new peer — and calls handle with each event until ctx ends, the stream
// ends or fails, or handle returns an error. It returns ErrUnauthorized (join afresh),
// ErrForbidden (join as a leech) or ErrRefused when the gateway says so.
func (c *Client) Events(ctx context.Context, sub Subscription, id, token string, handle func(Event) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := c.base.JoinPath(PathEvents)
	u.RawQuery = sub.Query().Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if id != "" {
		req.Header.Set("Authorization", FormatAuth(id, token))
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("tracker events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(PathEvents, resp)
	}
	idle := time.AfterFunc(streamIdle, func() { cancel(errors.New("tracker events: idle")) })
	defer idle.Stop()
	r := NewEventReader(resetting{resp.Body, idle})
	for {
		ev, err := r.Next()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				return cause
			}
			return fmt.Errorf("tracker events: %w", err)
		}
		if err := handle(ev); err != nil {
			return err
		}
	}
}

// resetting pushes its timer back on every read that delivers bytes.
type resetting struct {
	r io.Reader
	t *time.Timer
}

func (r resetting) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.t.Reset(streamIdle)
	}
	return n, err
}

// Report sends a peer's report.
func (c *Client) Report(ctx context.Context, req ReportRequest) error {
	return c.post(ctx, PathReport, req)
}

// Signal sends a WebRTC signal to another peer through the gateway (see signal.go).
func (c *Client) Signal(ctx context.Context, req SignalRequest) error {
	return c.post(ctx, PathSignal, req)
}

// post POSTs v as JSON to path and checks that the gateway took it.
func (c *Client) post(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		return fmt.Errorf("tracker %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(path, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	return nil
}

// statusError reads a refused call's message and classifies it.
func statusError(path string, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	msg := bytes.TrimSpace(data)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("tracker %s: %w: %s", path, ErrUnauthorized, msg)
	case http.StatusForbidden:
		return fmt.Errorf("tracker %s: %w: %s", path, ErrForbidden, msg)
	case http.StatusTooManyRequests:
		return fmt.Errorf("tracker %s: %w: %s", path, ErrRefused, msg)
	case http.StatusBadRequest:
		return fmt.Errorf("tracker %s: %w: %q", path, ErrBadRequest, msg)
	}
	return fmt.Errorf("tracker %s: %s: %s", path, resp.Status, msg)
}
