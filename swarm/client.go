package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxResponseBytes bounds every tracker response a Client reads.
const maxResponseBytes = 256 << 10

// Client calls a gateway's tracker API. It is what proxies use; they never talk to Redis.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient returns a client for the gateway at base (e.g. http://gw:8080). timeout bounds
// each call; zero means 2 s.
func NewClient(base *url.URL, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Client{base: base, http: &http.Client{Timeout: timeout}}
}

// Announce joins or heartbeats.
func (c *Client) Announce(ctx context.Context, req AnnounceRequest) (AnnounceResponse, error) {
	var resp AnnounceResponse
	err := c.post(ctx, PathAnnounce, req, &resp)
	return resp, err
}

// Have says the peer holds these segments.
func (c *Client) Have(ctx context.Context, req HaveRequest) error {
	return c.post(ctx, PathHave, req, nil)
}

// Lookup asks who holds a segment.
func (c *Client) Lookup(ctx context.Context, req LookupRequest) (LookupResponse, error) {
	var resp LookupResponse
	err := c.post(ctx, PathLookup, req, &resp)
	return resp, err
}

// Leave leaves a channel's swarm.
func (c *Client) Leave(ctx context.Context, req LeaveRequest) error {
	return c.post(ctx, PathLeave, req, nil)
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("tracker %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("tracker %s: %w", path, err)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("tracker %s: %w: %s", path, ErrUnauthorized, bytes.TrimSpace(data))
	case http.StatusForbidden:
		return fmt.Errorf("tracker %s: %w: %s", path, ErrForbidden, bytes.TrimSpace(data))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("tracker %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("tracker %s: response: %w", path, err)
	}
	return nil
}
