package gateway

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

// hlsIngest pulls one live media playlist from an origin: it polls the playlist, fetches
// each new segment once, and appends it to the window when all its bytes are held. It owns
// the channel's timeline: the window numbers segments itself, and a restarted or
// renumbered origin shows up as a discontinuity, never as a step back.
type hlsIngest struct {
	sources []*url.URL // in order of preference
	win     *window
	client  *http.Client
	cfg     *Config
	log     *slog.Logger
	errs    *atomic.Int64 // counts failed polls; nil means not counted

	current  int                 // index in sources of the origin in use
	failures int                 // consecutive failed polls of the current origin
	lastSeq  uint64              // origin media sequence of the newest ingested segment
	objects  map[string]*Segment // init sections and keys fetched lately, by URL and range
	// fleet numbers the segments with the fleet and saves the timeline; nil: alone.
	fleet    *fleetTimeline
	span     time.Duration // how far back the origin's playlist reaches, at the last poll
	spanSegs int           // and how many segments it lists
	started  bool          // lastSeq is meaningful
	pendDisc bool          // the next appended segment starts a discontinuity
}

// Run polls until ctx ends. Failures are logged and retried after a back-off; the window
// keeps being served meanwhile. Segments the origin dropped while it could not be reached
// show up as a gap in its numbering, hence as a discontinuity (see newSegments); after
// FailoverAfter failures in a row the next source takes over (see result).
func (in *hlsIngest) Run(ctx context.Context) error {
	backoff := in.cfg.PollInterval
	for {
		wait := in.cfg.PollInterval
		err := in.poll(ctx)
		if ctx.Err() != nil || (err == nil && in.win.ended()) {
			return nil // an ended playlist never changes again: it stays served as it is
		}
		if in.result(err) {
			wait = backoff
			backoff = min(backoff*2, in.cfg.MaxBackoff)
		} else {
			backoff = in.cfg.PollInterval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// result accounts for one poll and reports whether it failed. After FailoverAfter failures
// in a row it switches to the next source: that origin numbers its segments its own way,
// so its first segment starts a discontinuity.
func (in *hlsIngest) result(err error) (failed bool) {
	if err == nil {
		in.failures = 0
		return false
	}
	in.failures++
	if in.errs != nil {
		in.errs.Add(1)
	}
	in.log.Warn("origin poll failed", "source", in.source().Redacted(), "failures", in.failures, "err", err)
	if in.failures >= in.cfg.FailoverAfter && len(in.sources) > 1 {
		in.current = (in.current + 1) % len(in.sources)
		in.failures, in.started, in.pendDisc = 0, false, true
		in.log.Warn("failing over", "to", in.source().Redacted())
	}
	return true
}

func (in *hlsIngest) source() *url.URL { return in.sources[in.current] }

// poll fetches the origin playlist once and ingests every segment not yet seen.
func (in *hlsIngest) poll(ctx context.Context) error {
	src := in.source()
	body, err := in.get(ctx, src, playlist.MaxPlaylistBytes)
	if err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	media, err := playlist.ParseOrigin(body)
	if err != nil {
		return fmt.Errorf("playlist %s: %w", src.Redacted(), err)
	}
	in.win.setMeta(media.Version, media.Header, media.Trailer)
	if td := in.win.setTargetDuration(media.TargetDuration); td != media.TargetDuration {
		in.log.Warn("origin target duration differs from the stream's; keeping the stream's", "origin", media.TargetDuration, "stream", td)
	}
	switch {
	case media.Ended && in.win.empty():
		// Ended before anything was listed: VOD. (Ended after a failover or an origin
		// restart, it is the end of the live stream, handled below.)
		return in.listVOD(ctx, src, media)
	case media.PlaylistType == "EVENT":
		// An event playlist only ever grows; so does ours (within the memory bound).
		in.win.growTo(len(media.Segments))
		in.win.setType("EVENT")
	}
	in.span, in.spanSegs = 0, len(media.Segments)
	for _, s := range media.Segments {
		in.span += time.Duration(s.Duration * float64(time.Second))
	}
	for _, s := range in.newSegments(media) {
		if err := in.ingest(ctx, src, s); err != nil {
			return err
		}
	}
	if media.Ended {
		in.win.end(media.PlaylistType)
	}
	return nil
}

// newSegments returns the origin segments to ingest, oldest first: on the first poll the
// newest window's worth; later everything after the last one ingested. An origin whose
// numbering went backwards restarted: its segments are taken as new, after a discontinuity.
func (in *hlsIngest) newSegments(m *playlist.OriginMedia) []playlist.OriginSegment {
	segs := m.Segments
	if len(segs) == 0 {
		return nil
	}
	newest := segs[len(segs)-1].Seq
	if in.started && newest < in.lastSeq {
		in.log.Info("origin media sequence went back; treating as restart", "was", in.lastSeq, "now", newest)
		in.started = false
		in.pendDisc = true
	}
	if !in.started {
		return segs[max(0, len(segs)-in.win.capacity()):]
	}
	for i, s := range segs {
		if s.Seq > in.lastSeq {
			if s.Seq > in.lastSeq+1 {
				in.pendDisc = true // we missed segments
			}
			return segs[i:]
		}
	}
	return nil
}

func (in *hlsIngest) ingest(ctx context.Context, src *url.URL, s playlist.OriginSegment) error {
	ref, err := url.Parse(s.URI)
	if err != nil {
		return fmt.Errorf("segment %d uri: %w", s.Seq, err)
	}
	data, err := in.getRange(ctx, src.ResolveReference(ref), s.Range, in.cfg.MaxSegmentBytes)
	if err != nil {
		return fmt.Errorf("segment %d: %w", s.Seq, err)
	}
	meta, aux, err := in.segmentMeta(ctx, src, s)
	if err != nil {
		return err
	}
	meta.Discontinuity = s.Discontinuity || in.pendDisc
	seg := in.fleet.append(ctx, in.win, in.cfg.Now(), in.span, in.spanSegs, meta, data, segmentExt(ref), aux)
	in.pendDisc = false
	in.lastSeq, in.started = s.Seq, true
	in.log.Debug("segment listed", "seq", seg.Seq, "name", seg.Name, "bytes", seg.Size)
	return nil
}

// segmentMeta returns the segment's tags for the gateway's playlist, and the init section and
// key it refers to, fetched once (an IV the origin left implicit is written out: RFC 8216
// §5.2 makes it the origin's media sequence number, which the gateway renumbers).
func (in *hlsIngest) segmentMeta(ctx context.Context, src *url.URL, s playlist.OriginSegment) (playlist.Segment, []*Segment, error) {
	meta := playlist.Segment{Duration: s.Duration, Title: s.Title, ProgramDateTime: s.ProgramDateTime, Tags: s.Tags}
	var aux []*Segment
	if s.Init != nil {
		init, err := in.object(ctx, src, kindInit, s.Init.URI, s.Init.Range)
		if err != nil {
			return meta, nil, fmt.Errorf("segment %d init section: %w", s.Seq, err)
		}
		meta.Init = &playlist.InitRef{Name: init.Name, Digest: init.Digest, Size: init.Size}
		aux = append(aux, init)
	}
	if s.Key != nil {
		key, err := in.object(ctx, src, kindKey, s.Key.URI, nil)
		if err != nil {
			return meta, nil, fmt.Errorf("segment %d key: %w", s.Seq, err)
		}
		k := *s.Key
		k.URI = key.Name
		if k.IV == "" {
			k.IV = fmt.Sprintf("0x%032x", s.Seq)
		}
		meta.Key = &k
		aux = append(aux, key)
	}
	return meta, aux, nil
}

// listVOD lists a playlist that has ended before the gateway first saw it (VOD, or an
// event that is over): all of it at once, each segment fetched when first asked for. Init
// sections and keys are fetched now: they are small and every segment needs them.
func (in *hlsIngest) listVOD(ctx context.Context, src *url.URL, m *playlist.OriginMedia) error {
	segs := make([]*Segment, 0, len(m.Segments))
	seq := in.win.timeline().NextSeq
	for i, s := range m.Segments {
		ref, err := url.Parse(s.URI)
		if err != nil {
			return fmt.Errorf("segment %d uri: %w", s.Seq, err)
		}
		meta, aux, err := in.segmentMeta(ctx, src, s)
		if err != nil {
			return err
		}
		meta.Discontinuity = s.Discontinuity && i > 0
		u := src.ResolveReference(ref)
		meta.Seq, meta.Name = seq+uint64(i), vodName(seq+uint64(i), u, s.Range, segmentExt(ref))
		segs = append(segs, &Segment{Segment: meta, aux: aux, src: u, rng: s.Range})
	}
	in.win.listVOD(segs, cmp.Or(m.PlaylistType, "VOD"))
	in.started = true
	in.fleet.save(ctx, in.win)
	in.log.Info("VOD listed; segments are fetched on demand", "segments", len(segs))
	return nil
}

// maxKeyBytes bounds a key from the origin (AES-128 keys are 16 bytes).
const maxKeyBytes = 1 << 10

// object returns the init section or key at uri (and byte range), fetching it once: the
// ingest remembers the few it fetched last.
func (in *hlsIngest) object(ctx context.Context, src *url.URL, kind objectKind, uri string, r *playlist.ByteRange) (*Segment, error) {
	ref, err := url.Parse(uri)
	if err != nil {
		return nil, err
	}
	u := src.ResolveReference(ref)
	id := u.String()
	if r != nil {
		id += fmt.Sprintf("@%d+%d", r.Offset, r.Length)
	}
	if obj := in.objects[id]; obj != nil {
		return obj, nil
	}
	limit, prefix, ext := in.cfg.MaxSegmentBytes, "init", segmentExt(ref)
	if kind == kindKey {
		limit, prefix, ext = maxKeyBytes, "key", ".key"
	}
	data, err := in.getRange(ctx, u, r, limit)
	if err != nil {
		return nil, err
	}
	if in.objects == nil || len(in.objects) >= 16 {
		in.objects = map[string]*Segment{} // bounded: origins rotate these rarely
	}
	obj := newObject(kind, prefix, data, ext)
	in.objects[id] = obj
	return obj, nil
}

// getRange fetches u, or only the byte range r of it.
func (in *hlsIngest) getRange(ctx context.Context, u *url.URL, r *playlist.ByteRange, limit int64) ([]byte, error) {
	if r == nil {
		return in.get(ctx, u, limit)
	}
	if r.Length > limit || r.Length <= 0 || r.Offset < 0 {
		return nil, fmt.Errorf("%w: byte range %d@%d", ErrTooLarge, r.Length, r.Offset)
	}
	return getBoundedRange(ctx, in.client, in.cfg.OriginTimeout, u, r.Offset, r.Length)
}

func (in *hlsIngest) get(ctx context.Context, u *url.URL, limit int64) ([]byte, error) {
	return getBounded(ctx, in.client, in.cfg.OriginTimeout, u, limit)
}

var extRe = regexp.MustCompile(`^\.[a-z0-9]{1,5}$`)

// segmentExt keeps the origin's file extension (.ts, .aac, .vtt, …) in the gateway's name,
// so that players and tools that look at it are not misled; anything odd becomes .ts.
func segmentExt(u *url.URL) string {
	if ext := strings.ToLower(path.Ext(u.Path)); extRe.MatchString(ext) {
		return ext
	}
	return ".ts"
}
