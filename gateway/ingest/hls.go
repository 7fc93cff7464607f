package ingest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

// HLS pulls one live media playlist from an origin: it polls the playlist, fetches each
// new segment once, and publishes it to its window when all its bytes are held. Its
// timeline numbers the segments itself: a restarted or renumbered origin shows up as a
// discontinuity, never as a step back. An origin playlist that has ended when first seen
// is VOD: listed whole, each segment fetched when a client first asks for it (by the edge,
// through Origin.GetRange).
type HLS struct {
	sources []*url.URL // in order of preference
	win     Window
	origin  *Origin
	cfg     *Config
	log     *slog.Logger
	errs    *atomic.Int64 // counts failed polls; nil means not counted
	tl      *timeline

	current  int                 // index in sources of the origin in use
	failures int                 // consecutive failed polls of the current origin
	lastSeq  uint64              // origin media sequence of the newest ingested segment
	objects  map[string]*Segment // init sections and keys fetched lately, by URL and range
	span     time.Duration       // how far back the origin's playlist reaches, at the last poll
	spanSegs int                 // and how many segments it lists
	started  bool                // lastSeq is meaningful
	pendDisc bool                // the next published segment starts a discontinuity
	listed   bool                // something was published
	ended    bool                // the playlist ended: nothing changes any more
	info     PlaylistInfo        // as last given to the window
}

// Run polls until ctx ends, after continuing the rendition's recorded timeline. Failures
// are logged and retried after a back-off; the window keeps being served meanwhile.
// Segments the origin dropped while it could not be reached show up as a gap in its
// numbering, hence as a discontinuity (see newSegments); after FailoverAfter failures in a
// row the next source takes over (see result).
func (in *HLS) Run(ctx context.Context) error {
	in.tl.restore(ctx, in.cfg.Now())
	backoff := in.cfg.PollInterval
	for {
		wait := in.cfg.PollInterval
		err := in.Poll(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // ctx ended: Run stops, which is no failure
		}
		if err == nil && in.ended {
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
func (in *HLS) result(err error) (failed bool) {
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

func (in *HLS) source() *url.URL { return in.sources[in.current] }

// Poll fetches the origin playlist once and publishes every segment not yet seen. Run
// calls it every PollInterval; a failed poll leaves the window as it was.
func (in *HLS) Poll(ctx context.Context) error {
	src := in.source()
	body, err := in.origin.Get(ctx, src, playlist.MaxPlaylistBytes)
	if err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	media, err := playlist.ParseOrigin(body)
	if err != nil {
		return fmt.Errorf("playlist %s: %w", src.Redacted(), err)
	}
	if td := in.tl.targetDuration(media.TargetDuration); td != media.TargetDuration {
		in.log.Warn("origin target duration differs from the stream's; keeping the stream's", "origin", media.TargetDuration, "stream", td)
	}
	info := PlaylistInfo{Version: media.Version, Header: media.Header, Trailer: media.Trailer, TargetDuration: in.tl.td, Type: in.info.Type}
	switch {
	case media.Ended && !in.listed:
		// Ended before anything was listed: VOD. (Ended after a failover or an origin
		// restart, it is the end of the live stream, handled below.)
		return in.listVOD(ctx, src, media, info)
	case media.PlaylistType == "EVENT":
		info.Type = "EVENT" // an event playlist only ever grows; so does ours (within the memory bound)
	}
	in.setPlaylist(info)
	in.span, in.spanSegs = 0, len(media.Segments)
	for _, s := range media.Segments {
		in.span += time.Duration(s.Duration * float64(time.Second))
	}
	segs := in.newSegments(media)
	in.tl.first(len(segs))
	for _, s := range segs {
		if err := in.ingest(ctx, src, s); err != nil {
			return err
		}
	}
	if media.Ended {
		info.Ended = true
		if media.PlaylistType == "VOD" {
			info.Type = "VOD"
		}
		in.setPlaylist(info)
		in.ended = true
	}
	return nil
}

// setPlaylist gives the window the playlist's tags when they changed.
func (in *HLS) setPlaylist(info PlaylistInfo) {
	if !info.equal(in.info) {
		in.info = info
		in.win.SetPlaylist(info)
	}
}

// newSegments returns the origin segments to ingest, oldest first: on the first poll the
// newest window's worth; later everything after the last one ingested. An origin whose
// numbering went backwards restarted: its segments are taken as new, after a discontinuity.
func (in *HLS) newSegments(m *playlist.OriginMedia) []playlist.OriginSegment {
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
		take := in.cfg.Window
		if m.PlaylistType == "EVENT" {
			take = len(segs) // an event is listed from its start
		}
		return segs[max(0, len(segs)-take):]
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

func (in *HLS) ingest(ctx context.Context, src *url.URL, s playlist.OriginSegment) error {
	ref, err := url.Parse(s.URI)
	if err != nil {
		return fmt.Errorf("segment %d uri: %w", s.Seq, err)
	}
	data, err := in.origin.GetRange(ctx, src.ResolveReference(ref), s.Range, in.cfg.MaxSegmentBytes)
	if err != nil {
		return fmt.Errorf("segment %d: %w", s.Seq, err)
	}
	meta, aux, err := in.segmentMeta(ctx, src, s)
	if err != nil {
		return err
	}
	meta.Discontinuity = s.Discontinuity || in.pendDisc
	meta.Digest = playlist.Sum(data)
	in.tl.hint = s.Seq
	seg := newSegment(in.tl.number(ctx, in.cfg.Now(), meta, in.span, in.spanSegs), meta, data, segmentExt(ref), aux)
	if err := in.win.Publish(in.cfg.Now(), seg); err != nil {
		return err
	}
	in.pendDisc, in.listed = false, true
	in.lastSeq, in.started = s.Seq, true
	in.log.Debug("segment listed", "seq", seg.Seq, "name", seg.Name, "bytes", seg.Size)
	return nil
}

// segmentMeta returns the segment's tags for the gateway's playlist, and the init section and
// key it refers to, fetched once (an IV the origin left implicit is written out: RFC 8216
// §5.2 makes it the origin's media sequence number, which the gateway renumbers).
func (in *HLS) segmentMeta(ctx context.Context, src *url.URL, s playlist.OriginSegment) (playlist.Segment, []*Segment, error) {
	meta := playlist.Segment{Duration: s.Duration, Title: s.Title, ProgramDateTime: s.ProgramDateTime, Tags: s.Tags}
	var aux []*Segment
	if s.Init != nil {
		init, err := in.object(ctx, src, KindInit, s.Init.URI, s.Init.Range)
		if err != nil {
			return meta, nil, fmt.Errorf("segment %d init section: %w", s.Seq, err)
		}
		meta.Init = &playlist.InitRef{Name: init.Name, Digest: init.Digest, Size: init.Size}
		aux = append(aux, init)
	}
	if s.Key != nil {
		key, err := in.object(ctx, src, KindKey, s.Key.URI, nil)
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
func (in *HLS) listVOD(ctx context.Context, src *url.URL, m *playlist.OriginMedia, info PlaylistInfo) error {
	segs := make([]*Segment, 0, len(m.Segments))
	for _, s := range m.Segments {
		ref, err := url.Parse(s.URI)
		if err != nil {
			return fmt.Errorf("segment %d uri: %w", s.Seq, err)
		}
		meta, aux, err := in.segmentMeta(ctx, src, s)
		if err != nil {
			return err
		}
		meta.Discontinuity = s.Discontinuity
		segs = append(segs, &Segment{Segment: meta, Aux: aux, Src: src.ResolveReference(ref), Range: s.Range})
	}
	in.tl.numberAll(ctx, segs)
	for _, seg := range segs {
		seg.Name = vodName(seg.Seq, seg.Src, seg.Range, segmentExt(seg.Src))
	}
	info.Ended, info.Type = true, cmp.Or(m.PlaylistType, "VOD")
	in.info = info
	in.win.ListVOD(segs, info)
	in.listed, in.started, in.ended = true, true, true
	in.log.Info("VOD listed; segments are fetched on demand", "segments", len(segs))
	return nil
}

// vodName names an on-demand segment after its origin address, which for VOD names
// immutable bytes: "SEQ-vHASH16EXT".
func vodName(seq uint64, u *url.URL, r *playlist.ByteRange, ext string) string {
	id := u.String()
	if r != nil {
		id += fmt.Sprintf("@%d+%d", r.Offset, r.Length)
	}
	h := sha256.Sum256([]byte(id))
	return fmt.Sprintf("%d-v%s%s", seq, hex.EncodeToString(h[:8]), ext)
}

// maxKeyBytes bounds a key from the origin (AES-128 keys are 16 bytes).
const maxKeyBytes = 1 << 10

// maxObjects bounds the init sections and keys an ingest remembers: origins rotate them
// rarely.
const maxObjects = 16

// object returns the init section or key at uri (and byte range), fetching it once: the
// ingest remembers the few it fetched last.
func (in *HLS) object(ctx context.Context, src *url.URL, kind ObjectKind, uri string, r *playlist.ByteRange) (*Segment, error) {
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
	if kind == KindKey {
		limit, prefix, ext = maxKeyBytes, "key", ".key"
	}
	data, err := in.origin.GetRange(ctx, u, r, limit)
	if err != nil {
		return nil, err
	}
	if in.objects == nil || len(in.objects) >= maxObjects {
		in.objects = map[string]*Segment{}
	}
	obj := newObject(kind, prefix, data, ext)
	in.objects[id] = obj
	return obj, nil
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
