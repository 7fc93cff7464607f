package ingest

import (
	"io"
	"log/slog"
	"sync"
	"time"
)

// recordingWindow is a Window that keeps what it is given.
type recordingWindow struct {
	mu        sync.Mutex // guards the following fields
	published []*Segment
	vod       []*Segment
	info      PlaylistInfo
}

func (w *recordingWindow) SetPlaylist(info PlaylistInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.info = info
}

func (w *recordingWindow) Publish(_ time.Time, seg *Segment) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.published = append(w.published, seg)
	return nil
}

func (w *recordingWindow) ListVOD(segs []*Segment, info PlaylistInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.vod, w.info = segs, info
}

func (w *recordingWindow) segments() []*Segment {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Segment(nil), w.published...)
}

// testConfig is the gateway's defaults, quiet.
func testConfig() *Config {
	return &Config{Window: 6, PollInterval: time.Second, MaxBackoff: 10 * time.Second, FailoverAfter: 3,
		MaxSegmentBytes: 32 << 20, SegmentDuration: 2 * time.Second, OriginTimeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
}
