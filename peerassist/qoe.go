package peerassist

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// QoE: what the proxy sees of its players' experience, from their requests, per channel.
//
// A player session is a client address (the connection's IP, so the players of one machine
// share one) requesting a channel. It starts with a playlist request (the entry playlist or
// a rendition's) from an address that has no session, and ends once the address has made
// no request of the channel, playlist or segment, for two target durations and a second
// (sessionIdle when the target duration is unknown, and at most). A live player reloads
// its playlist every target duration, so a longer gap means it left: when it comes back,
// that is a start, as the player feels it (a new startup, and its first segment needed
// now: see playhead.gone); the player of an ended playlist loads it once and its segment
// requests keep its session.
//
// Startup: from the arrival of the session's first playlist request to the moment the
// response carrying the session's first media segment has been completely written (a GET
// answered 200, every byte of the body accepted by the connection). Counted once per
// session: Startups += 1, StartupMillis += that time in whole milliseconds. A media
// segment is one the playlists list with a duration, or an object passed through from the
// gateway that is not a key; init sections and keys are not media.
//
// Stall: a media segment response completely written strictly later than the deadline
// needBy computed for the request when it arrived, when that deadline is the time the
// player's buffer runs dry: the arrival plus the CMCD bl the request carries, or else the
// playhead's inference for a segment after the last one it served (its dry time, or the
// arrival when it had run dry already). Judged only in a session whose startup is counted,
// so never for the session's first media segment (that is its startup); at most once per
// request. A deadline of "now" for want of knowledge (no playhead yet, an init section, a
// segment already served: a retry or a seek back) judges nothing, nor does an object
// passed through (it has no deadline). The playhead assumes the player plays on: one that
// pauses for longer than its buffer counts a stall when it resumes, unless it sends CMCD.

// Bounds of a channel's player sessions.
const (
	sessionIdle = 30 * time.Second
	maxSessions = 1024
)

type session struct {
	start   time.Time // arrival of its first playlist request
	last    time.Time // its last request
	started bool      // its first media segment was delivered: the startup is counted
}

// players are a channel's player sessions, by address: at most maxSessions, the one idle
// longest evicted first, idle ones dropped.
type players struct {
	mu sync.Mutex // guards m and td
	m  map[string]*session
	td time.Duration // the playlist's target duration; 0 when unknown
}

// setTarget records the playlist's target duration: a session ends after two of them
// without a request (and a second), a live player having left.
func (ps *players) setTarget(td time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.td = td
}

// idle is how long a session lasts without a request (ps.mu held): two target durations
// and a second (a live player reloads its playlist every target duration; one that stops
// for longer has left, and its return is a start, as it feels it), sessionIdle at most and
// when the target duration is unknown.
func (ps *players) idle() time.Duration {
	if ps.td <= 0 {
		return sessionIdle
	}
	return min(2*ps.td+time.Second, sessionIdle)
}

// playlist records a playlist request from addr arriving at now: it starts a session when
// addr has none.
func (ps *players) playlist(addr string, now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if s := ps.live(addr, now); s != nil {
		s.last = now
		return
	}
	ps.add(addr, now)
}

// touch records any other request from addr at now: it keeps addr's session alive.
func (ps *players) touch(addr string, now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if s := ps.live(addr, now); s != nil {
		s.last = now
	}
}

// delivered records that a media segment response to addr was completely written at done;
// need is the request's deadline when it is a buffer-dry time, zero otherwise. It returns
// the session's startup time when this was its first media segment (first), and whether
// the delivery was a stall.
func (ps *players) delivered(addr string, need, done time.Time) (startup time.Duration, first, stalled bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := ps.live(addr, done)
	if s == nil {
		return 0, false, false
	}
	s.last = done
	if !s.started {
		s.started = true
		return max(done.Sub(s.start), 0), true, false // never negative: the gateway refuses it
	}
	return 0, false, !need.IsZero() && done.After(need)
}

// live returns addr's session, or nil when it has none or it has been idle too long (then
// it is dropped). ps.mu held.
func (ps *players) live(addr string, now time.Time) *session {
	s := ps.m[addr]
	if s != nil && now.Sub(s.last) > ps.idle() {
		delete(ps.m, addr)
		return nil
	}
	return s
}

// add starts addr's session at now (ps.mu held). At the bound it first drops the idle
// sessions, then, if none was, the one idle longest.
func (ps *players) add(addr string, now time.Time) {
	if ps.m == nil {
		ps.m = map[string]*session{}
	}
	if len(ps.m) >= maxSessions {
		var oldest *session
		oldestAddr := ""
		for a, s := range ps.m {
			if now.Sub(s.last) > ps.idle() {
				delete(ps.m, a)
			} else if oldest == nil || s.last.Before(oldest.last) {
				oldest, oldestAddr = s, a
			}
		}
		if len(ps.m) >= maxSessions {
			delete(ps.m, oldestAddr)
		}
	}
	ps.m[addr] = &session{start: now, last: now}
}

// played counts what a media segment response to addr, completely written at done, was
// for its player: its startup (returned, with first true), a stall, or neither (see
// delivered).
func (m *member) played(addr string, need, done time.Time) (startup time.Duration, first bool) {
	startup, first, stalled := m.players.delivered(addr, need, done)
	switch {
	case first:
		m.stats.startups.Add(1)
		m.stats.startupMillis.Add(startup.Milliseconds())
	case stalled:
		m.stats.stalls.Add(1)
	}
	return startup, first
}

// wholeWritten reports whether the response to c was a GET's 200 whose body, n bytes, was
// all accepted by the connection, the player still there: the object was delivered.
//
// A 206 counts when it carried the whole object: players such as ffmpeg ask for
// "bytes=0-" by default.
func wholeWritten(c echo.Context, n int) bool {
	r := c.Response()
	whole := r.Status == http.StatusOK ||
		(r.Status == http.StatusPartialContent && r.Header().Get("Content-Range") == fmt.Sprintf("bytes 0-%d/%d", n-1, n))
	return c.Request().Method == http.MethodGet && whole && r.Size == int64(n) && c.Request().Context().Err() == nil
}
