package simplayer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

// Timing of requests and retries.
const (
	playlistTimeout = 5 * time.Second        // one playlist request
	segmentTimeout  = 3                      // one segment request: this many target durations
	segmentTries    = 3                      // per segment or init section, before giving it up
	retryDelay      = 500 * time.Millisecond // between two tries of a segment
	startWindow     = 10 * time.Second       // how long the first playlist load is retried
	startDelay      = 250 * time.Millisecond // between two tries of the first playlist load
)

// Player is one simulated viewer: Run plays, Result reads the figures at any time.
type Player struct {
	cfg Config
	pb  playback // everything Result reads, under its own mutex

	// Run's own state, used by Run's goroutine only.
	mediaURL  *url.URL                 // the media playlist, as requested
	base      *url.URL                 // what its URIs resolve against: the URL that last served it
	pl        *playlist.OriginMedia    // the media playlist as last loaded
	starts    map[uint64]time.Duration // media start time of each listed segment
	newestEnd time.Duration            // media time at the end of the newest listed segment
	next      uint64                   // sequence number of the next segment to fetch
	reloadAt  time.Time                // when a live playlist is due to be reloaded
	initURI   string                   // the init section last fetched, with its range ("" if none)
}

// New returns a player for cfg; Run plays it.
func New(cfg Config) *Player {
	cfg.setDefaults()
	return &Player{cfg: cfg}
}

// Result returns the figures so far; safe to call concurrently with Run.
func (p *Player) Result() Result { return p.pb.result(time.Now()) }

// Run plays until ctx ends or the stream has ended and been played out, then returns nil.
// It returns an error only when playing cannot start: the URL is not http(s), or the
// playlist could not be loaded and parsed within 10 s of tries (the server may be coming
// up). Run is called once per Player.
func (p *Player) Run(ctx context.Context) error {
	p.pb.begin(time.Now())
	m, requested, err := p.open(ctx)
	if ctx.Err() != nil {
		return nil //nolint:nilerr // ctx ended: Run stops, which is no failure (see above)
	}
	if err != nil {
		return fmt.Errorf("simplayer: start %s: %w", p.cfg.URL, err)
	}
	p.apply(m, requested)
	for ctx.Err() == nil {
		if !p.step(ctx) {
			break
		}
	}
	return nil
}

// open loads the first media playlist, trying again for up to startWindow. It returns
// when the successful try was made.
func (p *Player) open(ctx context.Context) (*playlist.OriginMedia, time.Time, error) {
	u, err := url.Parse(p.cfg.URL)
	if err == nil && u.Scheme != "http" && u.Scheme != "https" {
		err = errors.New("not an http(s) URL")
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	deadline := time.Now().Add(startWindow)
	for {
		requested := time.Now()
		var m *playlist.OriginMedia
		m, err = p.openOnce(ctx, u)
		if err == nil || ctx.Err() != nil || !time.Now().Add(startDelay).Before(deadline) {
			return m, requested, err
		}
		sleep(ctx, startDelay)
	}
}

// openOnce loads u and, when it is a multivariant playlist, the variant to play.
func (p *Player) openOnce(ctx context.Context, u *url.URL) (*playlist.OriginMedia, error) {
	data, final, err := p.get(ctx, u, playlistTimeout, p.cfg.MaxPlaylistBytes, nil)
	if err != nil {
		return nil, err
	}
	m, err := playlist.ParseOrigin(data)
	if !errors.Is(err, playlist.ErrNotMedia) {
		p.mediaURL, p.base = u, final
		return m, err
	}
	ref, err := pickVariant(data, p.cfg.Variant)
	if err != nil {
		return nil, err
	}
	p.mediaURL = final.ResolveReference(ref)
	if data, p.base, err = p.get(ctx, p.mediaURL, playlistTimeout, p.cfg.MaxPlaylistBytes, nil); err != nil {
		return nil, err
	}
	return playlist.ParseOrigin(data)
}

// step does the next thing a player does: reload a live playlist when due, fetch the next
// segment when the buffer has room, play out an ended stream, or wait for one of these.
// It reports whether to go on.
func (p *Player) step(ctx context.Context) bool {
	now := time.Now()
	live := !p.pl.Ended
	if live && !now.Before(p.reloadAt) {
		p.reload(ctx)
		return true
	}
	s, listed := p.segment(p.next)
	switch {
	case listed:
		ahead := p.pb.buffered(now)
		if ahead < p.cfg.MaxBuffer {
			p.fetch(ctx, s)
			p.next++
			return true
		}
		wait := ahead - p.cfg.MaxBuffer + time.Millisecond
		if live {
			wait = min(wait, p.reloadAt.Sub(now))
		}
		sleep(ctx, wait)
	case live: // the next segment is not listed yet
		sleep(ctx, p.reloadAt.Sub(now))
	default: // ended, and every listed segment fetched or given up
		left := p.pb.finish(now)
		if left == 0 {
			return false
		}
		sleep(ctx, left)
	}
	return true
}

// reload loads the media playlist again. A failure is counted and the next reload is due
// half a target duration after this one.
func (p *Player) reload(ctx context.Context) {
	requested := time.Now()
	data, final, err := p.get(ctx, p.mediaURL, playlistTimeout, p.cfg.MaxPlaylistBytes, nil)
	var m *playlist.OriginMedia
	if err == nil {
		m, err = playlist.ParseOrigin(data)
	}
	if err != nil {
		if ctx.Err() == nil {
			p.pb.failed()
		}
		p.reloadAt = requested.Add(targetDuration(p.pl) / 2)
		return
	}
	p.base = final
	p.apply(m, requested)
}

// apply takes in a freshly loaded playlist m, requested at the given time: it places its
// segments in media time, picks the segment to start at or jumps to the live sync point
// when the next one has left the window, schedules the next reload and measures latency.
func (p *Player) apply(m *playlist.OriginMedia, requested time.Time) {
	first := p.pl == nil
	grew := first || end(m) > end(p.pl)
	p.timeline(m)
	p.pl = m
	switch {
	case first && m.Ended:
		p.next = m.MediaSequence
	case first:
		p.next = p.syncSeq()
	case len(m.Segments) > 0 && (p.next < m.MediaSequence || p.next > end(m)):
		p.pb.skipped()
		p.next = p.syncSeq()
	}
	interval := targetDuration(m)
	if !grew {
		interval /= 2
	}
	p.reloadAt = requested.Add(interval)
	pending, ok := p.starts[p.next]
	if !ok {
		pending = p.newestEnd
	}
	p.pb.setLatency(time.Now(), p.newestEnd, pending)
}

// timeline gives each segment of m its media start time. Segments listed before keep
// theirs and the others follow on from them; a window that shares no segment with the
// previous one is placed after it, a target duration per missing sequence number.
func (p *Player) timeline(m *playlist.OriginMedia) {
	anchor, at := 0, p.newestEnd
	if p.pl != nil && m.MediaSequence > end(p.pl) {
		missing := min(m.MediaSequence-end(p.pl), playlist.MaxSegments)
		at += time.Duration(missing) * targetDuration(m)
	}
	for i, s := range m.Segments {
		if t, ok := p.starts[s.Seq]; ok {
			anchor, at = i, t
			break
		}
	}
	for _, s := range m.Segments[:anchor] {
		at -= duration(s)
	}
	p.starts = make(map[uint64]time.Duration, len(m.Segments))
	for _, s := range m.Segments {
		p.starts[s.Seq] = at
		at += duration(s)
	}
	if len(m.Segments) > 0 {
		p.newestEnd = at
	}
}

// syncSeq returns the live sync point of the current playlist: LiveSyncSegments from the
// end, or its first segment.
func (p *Player) syncSeq() uint64 {
	back := min(p.cfg.LiveSyncSegments, len(p.pl.Segments))
	return end(p.pl) - uint64(back)
}

// segment returns the listed segment numbered seq.
func (p *Player) segment(seq uint64) (playlist.OriginSegment, bool) {
	if seq < p.pl.MediaSequence || seq >= end(p.pl) {
		return playlist.OriginSegment{}, false
	}
	return p.pl.Segments[seq-p.pl.MediaSequence], true
}

// end returns the sequence number after m's last segment.
func end(m *playlist.OriginMedia) uint64 { return m.MediaSequence + uint64(len(m.Segments)) }

// targetDuration returns m's target duration, at least a second.
func targetDuration(m *playlist.OriginMedia) time.Duration {
	return time.Duration(max(m.TargetDuration, 1)) * time.Second
}

// duration returns s's EXTINF duration.
func duration(s playlist.OriginSegment) time.Duration {
	return time.Duration(math.Round(s.Duration * float64(time.Second)))
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
