package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// maxEventStreams bounds the event streams one Dashboard serves at once.
const maxEventStreams = 256

// overviewCache holds the overview the event streams send, so that however many streams
// are open Stats is read once per EventsInterval, not once per stream.
type overviewCache struct {
	mu sync.Mutex // guards the following fields; held while one caller computes
	ov Overview
	at time.Time
}

// sharedOverview returns an overview computed less than half an EventsInterval ago, or a
// fresh one.
func (d *Dashboard) sharedOverview(ctx context.Context) (Overview, error) {
	c := &d.events
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := d.cfg.Now(); !c.at.IsZero() && now.Sub(c.at) < d.cfg.EventsInterval/2 {
		return c.ov, nil
	}
	ov, err := d.overview(ctx)
	if err == nil {
		c.ov, c.at = ov, d.cfg.Now()
	}
	return ov, err
}

// handleEvents streams the overview as Server-Sent Events: one at once, then one every
// EventsInterval, until the client goes away. Past maxEventStreams open streams, 503.
func (d *Dashboard) handleEvents(c echo.Context) error {
	if d.streams.Add(1) > maxEventStreams {
		d.streams.Add(-1)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "too many event streams")
	}
	defer d.streams.Add(-1)
	ctx := c.Request().Context()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx in front: do not buffer the stream
	c.Response().WriteHeader(http.StatusOK)
	tick := time.NewTicker(d.cfg.EventsInterval)
	defer tick.Stop()
	for {
		ov, err := d.sharedOverview(ctx)
		if err != nil {
			_, _ = fmt.Fprintf(c.Response(), ": stats unavailable\n\n")
		} else {
			b, _ := json.Marshal(ov)
			if _, err := fmt.Fprintf(c.Response(), "event: overview\ndata: %s\n\n", b); err != nil {
				return nil
			}
		}
		c.Response().Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
