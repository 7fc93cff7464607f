package gateway

import (
	"bytes"
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

// tsIngest reads a continuous MPEG-TS stream from a media server (HTTP, UDP or SRT),
// segments it (see tsingest) and lists each segment as soon as it is cut. A source that
// drops is reconnected after a back-off; what comes after starts a discontinuity. After
// FailoverAfter failed connections in a row the next source takes over.
type tsIngest struct {
	sources []*url.URL // in order of preference
	win     *window
	cfg     *Config
	log     *slog.Logger
	seg     *tsingest.Segmenter
	// fleet numbers the segments with the fleet and saves the timeline; nil: alone.
	fleet *fleetTimeline
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

// newTSIngest reads sources from sources[current] on; first, if not nil, is that source's
// stream, opened by discovery.
func newTSIngest(srcs []*url.URL, current int, win *window, cfg *Config, log *slog.Logger, first io.ReadCloser) *tsIngest {
	return &tsIngest{sources: srcs, current: current, win: win, cfg: cfg, log: log, first: first,
		seg: tsingest.New(tsingest.Config{TargetDuration: cfg.SegmentDuration, MaxSegmentBytes: int(cfg.MaxSegmentBytes),
			Now: cfg.Now, Logger: log})}
}

// Run reads and segments the stream until ctx ends, reconnecting as needed.
func (in *tsIngest) Run(ctx context.Context) error {
	want := int(in.cfg.SegmentDuration / time.Second)
	if td := in.win.setTargetDuration(want); td != want {
		in.log.Warn("the restored timeline keeps its target duration; segments are cut to --segment-duration",
			"target_duration", td, "segment_duration", in.cfg.SegmentDuration)
	}
	backoff := in.cfg.PollInterval
	for {
		listed, err := in.session(ctx)
		in.list(ctx, in.seg.Break())
		if ctx.Err() != nil {
			return nil
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

func (in *tsIngest) source() *url.URL { return in.sources[in.current] }

// session reads one connection to the source until it fails; listed reports whether it
// gave at least one segment.
func (in *tsIngest) session(ctx context.Context) (listed bool, err error) {
	rc := in.first
	in.first = nil
	if rc == nil {
		if rc, err = tsingest.Open(ctx, in.source(), tsingest.SourceConfig{Timeout: in.cfg.OriginTimeout}); err != nil {
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

// list appends the segments to the window, under the numbers the segmenter gave them.
func (in *tsIngest) list(ctx context.Context, segs []tsingest.Segment) bool {
	for _, s := range segs {
		meta := playlist.Segment{Seq: s.Seq, Duration: s.Duration.Seconds(), Discontinuity: s.Discontinuity}
		seg := in.fleet.append(ctx, in.win, in.cfg.Now(), 2*in.cfg.SegmentDuration, 2, meta, s.Data, ".ts", nil)
		in.log.Debug("segment listed", "seq", seg.Seq, "name", seg.Name, "bytes", seg.Size, "duration", s.Duration)
	}
	return len(segs) > 0
}

// probe connects to an http(s) source and tells a continuous MPEG-TS stream from a
// playlist by its first bytes: a stream is returned open, to be read on (media servers
// may serve a stream to one client only); a playlist is read whole, bounded in size and
// time.
func (s *Server) probe(ctx context.Context, u *url.URL) (body []byte, stream io.ReadCloser, err error) {
	rc, err := tsingest.Open(ctx, u, tsingest.SourceConfig{Timeout: s.cfg.OriginTimeout})
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
	t := time.AfterFunc(s.cfg.OriginTimeout, func() { _ = rc.Close() })
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
