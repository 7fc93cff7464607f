package simplayer

import (
	"sync"
	"time"
)

// span is a buffered segment's place in media time.
type span struct{ start, end time.Duration }

// playback is the viewer's side of a Player: what is buffered, where the playhead is, and
// the figures Result reports. It is advanced lazily: every method takes the time of its
// event and first plays the buffer up to then, so nothing ticks. Run's goroutine drives it;
// Result reads it from any goroutine.
type playback struct {
	mu       sync.Mutex // guards the following fields
	res      Result
	begun    time.Time     // when Run started
	at       time.Time     // when the playhead was last advanced
	pos      time.Duration // the playhead, in media time
	queue    []span        // buffered segments not fully played, in order; the playhead is in queue[0]
	stalling bool
	stallAt  time.Time // when the ongoing stall began
	loaded   bool      // the stream ended and every segment was fetched or given up
}

// begin marks the start of Run.
func (b *playback) begin(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.begun, b.at = now, now
}

// advance plays the buffer from b.at up to now and returns now, or b.at if now is before
// it (Result's clock reading may precede Run's by the time it waited for mu). The caller
// holds mu.
func (b *playback) advance(now time.Time) time.Time {
	if now.Before(b.at) {
		now = b.at
	}
	dt := now.Sub(b.at)
	b.at = now
	if !b.res.Started || b.res.Ended || b.stalling {
		return now
	}
	for dt > 0 && len(b.queue) > 0 {
		left := b.queue[0].end - b.pos
		if dt < left {
			b.pos += dt
			return now
		}
		dt -= left
		b.pos = b.queue[0].end
		b.queue = b.queue[1:]
		if len(b.queue) > 0 {
			b.pos = max(b.pos, b.queue[0].start) // a gap is jumped at once
		}
	}
	switch {
	case len(b.queue) > 0:
	case b.loaded:
		b.res.Ended = true
	default:
		b.stalling = true
		b.stallAt = now.Add(-dt) // when the buffer ran dry
		b.res.Stalls++
	}
	return now
}

// ahead returns the media buffered ahead of the playhead. The caller holds mu.
func (b *playback) ahead() time.Duration {
	if len(b.queue) == 0 {
		return 0
	}
	a := b.queue[0].end - max(b.pos, b.queue[0].start)
	for _, s := range b.queue[1:] {
		a += s.end - s.start
	}
	return max(a, 0)
}

// buffered returns the media buffered ahead of the playhead at now.
func (b *playback) buffered(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return b.ahead()
}

// add buffers a segment that has just been downloaded: playback starts, or a stall ends.
func (b *playback) add(now time.Time, s span, size int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.advance(now)
	b.res.Segments++
	b.res.Bytes += int64(size)
	switch {
	case !b.res.Started:
		b.res.Started = true
		b.res.Startup = now.Sub(b.begun)
		b.pos = s.start
	case b.stalling:
		b.stalling = false
		b.res.StallTime += now.Sub(b.stallAt)
		b.pos = max(b.pos, s.start)
	}
	b.queue = append(b.queue, s)
}

// addBytes counts bytes that are not a segment's (an init section's).
func (b *playback) addBytes(size int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Bytes += int64(size)
}

// finish notes that the stream ended and every segment was fetched or given up. It returns
// the media left to play; 0 means playback has ended.
func (b *playback) finish(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loaded = true
	now = b.advance(now)
	if left := b.ahead(); left > 0 {
		return left
	}
	if b.stalling { // the last segments were given up: the stall ends with the stream
		b.stalling = false
		b.res.StallTime += now.Sub(b.stallAt)
	}
	b.queue = nil
	b.res.Ended = true
	return 0
}

// setLatency measures the latency behind live at a playlist load: newest is the media time
// at the end of the newest listed segment, pending where playback will start if it has not.
func (b *playback) setLatency(now time.Time, newest, pending time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	head := pending
	if b.res.Started {
		head = b.pos
	}
	b.res.Latency = max(newest-head, 0)
}

// failed counts a failed request.
func (b *playback) failed() { b.count(&b.res.Errors) }

// dropped counts a segment given up.
func (b *playback) dropped() { b.count(&b.res.Dropped) }

// skipped counts a jump to the live sync point.
func (b *playback) skipped() { b.count(&b.res.Skips) }

func (b *playback) count(n *int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*n++
}

// result returns the figures at now.
func (b *playback) result(now time.Time) Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.advance(now)
	r := b.res
	r.Buffer = b.ahead()
	if b.stalling {
		r.StallTime += now.Sub(b.stallAt)
	}
	return r
}
