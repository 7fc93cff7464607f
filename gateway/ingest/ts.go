package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/gateway/tsingest"
	"github.com/rawflow/rawflow/playlist"
)

// TS reads a continuous MPEG-TS stream from a media server (HTTP, UDP or SRT), segments it
// (see tsingest) and publishes each segment as soon as it is cut. A source that drops is
// reconnected after a back-off; what comes after starts a discontinuity. After
// FailoverAfter failed connections in a row the next source takes over.
type TS struct {
	sources []*url.URL // in order of preference
	win     Window
	cfg     *Config
	origin  *Origin // its policy and timeout apply to http(s) sources
	log     *slog.Logger
	seg     *tsingest.Segmenter
	tl      *timeline
	// first is the stream discovery opened (and found to be TS), read before any other.
	first io.ReadCloser
	errs  *atomic.Int64 // counts dropped connections; nil means not counted

	current  int // index in sources of the one in use
	failures int // connections in a row that failed; one that dropped after segments counts as the first
}

// notTSAfter is how many bytes a source may send without one MPEG-TS packet in them before
// it is taken for something else.
const notTSAfter = 1 << 20

var errNotTS = errors.New("not an MPEG-TS stream")

func newTS(srcs []*url.URL, current int, win Window, origin *Origin, cfg *Config, log *slog.Logger, first io.ReadCloser) *TS {
	return &TS{sources: srcs, current: current, win: win, origin: origin, cfg: cfg, log: log, first: first,
		tl:  &timeline{log: log},
		seg: tsingest.New(tsingest.Config{TargetDuration: cfg.SegmentDuration, MaxSegmentBytes: int(cfg.MaxSegmentBytes), Now: cfg.Now, Logger: log})}
}

// Run reads and segments the stream until ctx ends, reconnecting as needed, after
// continuing the rendition's recorded timeline.
func (in *TS) Run(ctx context.Context) error {
	// No wall-clock base (the zero time): a stream's segments are numbered from its own
	// clock (see tsingest), which every gateway on the stream shares, and which goes on
	// across a gateway restart.
	in.tl.restore(ctx, time.Time{})
	want := int(in.cfg.SegmentDuration / time.Second)
	if td := in.tl.targetDuration(want); td != want {
		in.log.Warn("the restored timeline keeps its target duration; segments are cut to --segment-duration",
			"target_duration", td, "segment_duration", in.cfg.SegmentDuration)
	}
	in.win.SetPlaylist(PlaylistInfo{TargetDuration: in.tl.td})
	backoff := in.cfg.PollInterval
	for {
		listed, err := in.session(ctx)
		in.list(ctx, in.seg.Break())
		if ctx.Err() != nil {
			return nil //nolint:nilerr // ctx ended: Run stops, which is no failure
		}
		if listed {
			in.failures, backoff = 0, in.cfg.PollInterval
		}
		in.failures++
		if in.errs != nil {
			in.errs.Add(1)
		}
		in.log.Warn("MPEG-TS source dropped; reconnecting", "source", in.source().Redacted(),
			"failures", in.failures, "retry_in", backoff, "err", err)
		if in.failures >= in.cfg.FailoverAfter && len(in.sources) > 1 {
			in.current, in.failures = (in.current+1)%len(in.sources), 0
			in.log.Warn("failing over", "to", in.source().Redacted())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, in.cfg.MaxBackoff)
	}
}

func (in *TS) source() *url.URL { return in.sources[in.current] }

// session reads one connection to the source until it fails; listed reports whether it
// gave at least one segment.
func (in *TS) session(ctx context.Context) (listed bool, err error) {
	rc := in.first
	in.first = nil
	if rc == nil {
		if rc, err = tsingest.Open(ctx, in.source(), in.origin.sourceConfig()); err != nil {
			return false, err
		}
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { _ = rc.Close() }) // unblocks Read
	defer stop()
	buf := make([]byte, 64<<10)
	var read int64
	packets := in.seg.Stats().Packets // the segmenter counts across connections
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			read += int64(n)
			listed = in.list(ctx, in.seg.Write(buf[:n])) || listed
			if read > notTSAfter && in.seg.Stats().Packets == packets {
				return listed, fmt.Errorf("%w: %d bytes without a sync byte pattern", errNotTS, read)
			}
		}
		if errors.Is(err, io.EOF) {
			return listed, errors.New("the source ended the stream")
		}
		if err != nil {
			return listed, err
		}
	}
}

// list publishes the segments, numbered by the timeline (a source numbers its first one
// itself: see tsingest.Segmenter).
func (in *TS) list(ctx context.Context, segs []tsingest.Segment) bool {
	for _, s := range segs {
		meta := playlist.Segment{Seq: s.Seq, Duration: s.Duration.Seconds(), Discontinuity: s.Discontinuity, Digest: playlist.Sum(s.Data)}
		seg := newSegment(in.tl.number(ctx, in.cfg.Now(), meta, 2*in.cfg.SegmentDuration, 2), meta, s.Data, ".ts", nil)
		if err := in.win.Publish(in.cfg.Now(), seg); err != nil {
			in.log.Error("segment not listed", "seq", seg.Seq, "err", err)
			continue
		}
		in.log.Debug("segment listed", "seq", seg.Seq, "name", seg.Name, "bytes", seg.Size, "duration", s.Duration)
	}
	return len(segs) > 0
}
