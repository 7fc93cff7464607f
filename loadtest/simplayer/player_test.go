package simplayer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

// play runs a player with cfg on o's URL path for d of bubble time, and returns its result
// then. Run must still be running at d, and return nil when cancelled.
func play(t *testing.T, o *fakeOrigin, path string, cfg Config, d time.Duration) Result {
	t.Helper()
	cfg.URL = "http://origin.test" + path
	cfg.Client = &http.Client{Transport: o}
	p := New(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(d)
	r := p.Result()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// checkClock checks that the time since Run started is all accounted for: start-up, media
// played (gaps are jumped at once) and stalls. It holds until the stream ends.
func checkClock(t *testing.T, r Result, elapsed, segDur time.Duration) {
	t.Helper()
	played := time.Duration(r.Segments)*segDur - r.Buffer
	if got := r.Startup + played + r.StallTime; got != elapsed {
		t.Errorf("startup %v + played %v + stalled %v = %v, want the %v elapsed", r.Startup, played, r.StallTime, got, elapsed)
	}
}

func TestSteadyLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.delay = func(uint64) time.Duration { return 100 * time.Millisecond }
		r := play(t, o, "/live/index.m3u8", Config{}, 61*time.Second)
		if !r.Started || r.Startup != 100*time.Millisecond {
			t.Errorf("Started %v, Startup %v; want true, the first segment's 100ms", r.Started, r.Startup)
		}
		if r.Stalls != 0 || r.StallTime != 0 || r.Skips != 0 || r.Errors != 0 || r.Dropped != 0 || r.Ended {
			t.Errorf("a steady stream gave %+v", r)
		}
		// Live sync: 3 segments behind the end, plus the 100ms the first one took.
		if want := 6*time.Second + 100*time.Millisecond; r.Latency != want {
			t.Errorf("Latency %v, want %v", r.Latency, want)
		}
		// Segments 3 to 35 (the one listed at 60s came at 60.1s).
		if r.Segments != 33 || r.Bytes != 33*1000 {
			t.Errorf("Segments %d, Bytes %d; want 33, 33000", r.Segments, r.Bytes)
		}
		checkClock(t, r, 61*time.Second, o.dur)
		// Reloads every target duration, each listing a new segment: 0, 2, ..., 60 s.
		if got := len(o.requests("index.m3u8")); got != 31 {
			t.Errorf("%d playlist loads in 61 s, want 31", got)
		}
		if got := o.requests("seg-")[0]; !strings.HasSuffix(got, "/live/seg-3.ts") {
			t.Errorf("first segment request %s, want seg-3.ts (3 from the end of 0..5)", got)
		}
	})
}

func TestSlowSegmentsStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.delay = func(uint64) time.Duration { return 3 * time.Second } // 2 s of media every 3 s
		r := play(t, o, "/live/index.m3u8", Config{}, 61*time.Second)
		// Segments come at 3, 6, ..., 60 s; each plays 2 s, then 1 s of stall: 19 of them.
		if r.Startup != 3*time.Second || r.Segments != 20 {
			t.Errorf("Startup %v, Segments %d; want 3s, 20", r.Startup, r.Segments)
		}
		if r.Stalls != 19 || r.StallTime != 19*time.Second {
			t.Errorf("Stalls %d, StallTime %v; want 19, 19s", r.Stalls, r.StallTime)
		}
		checkClock(t, r, 61*time.Second, o.dur)
	})
}

func TestFrozenLiveStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.frozen = true
		r := play(t, o, "/live/index.m3u8", Config{}, 9500*time.Millisecond)
		// Segments 3, 4, 5 play to 6 s, then the stall goes on.
		if r.Segments != 3 || r.Stalls != 1 || r.StallTime != 3500*time.Millisecond || r.Latency != 0 {
			t.Errorf("got %+v; want 3 segments, 1 stall of 3.5s, no latency left", r)
		}
		// Reloads at 0, then 2 s (a target duration), then every 1 s as nothing new is listed.
		if got := len(o.requests("index.m3u8")); got != 9 {
			t.Errorf("%d playlist loads in 9.5 s, want 9 (0, 2, 3, ..., 9 s)", got)
		}
	})
}

func TestOngoingStallCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.delay = func(seq uint64) time.Duration {
			if seq >= 6 {
				return time.Hour // each try times out after 3 target durations
			}
			return 0
		}
		r := play(t, o, "/live/index.m3u8", Config{}, 9*time.Second)
		// Segments 3, 4 and 5 came at once: 6 s of media, dry at 6 s, still stalled at 9 s.
		if r.Stalls != 1 || r.StallTime != 3*time.Second || r.Buffer != 0 {
			t.Errorf("Stalls %d, StallTime %v, Buffer %v; want 1, 3s, 0", r.Stalls, r.StallTime, r.Buffer)
		}
		// seg-6, listed at 2 s, timed out at 8 s (3 target durations); the retry began at 8.5 s.
		if n := o.triesOf("/live/seg-6.ts"); n != 2 || r.Errors != 1 {
			t.Errorf("seg-6 tried %d times, %d errors; want 2, 1", n, r.Errors)
		}
		checkClock(t, r, 9*time.Second, o.dur)
	})
}

func TestFallBehindSkips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.window = 4
		o.delay = func(uint64) time.Duration { return 3 * time.Second }
		r := play(t, o, "/live/index.m3u8", Config{}, 40*time.Second)
		if r.Skips == 0 {
			t.Fatalf("Skips 0 after falling behind a 4-segment window: %+v", r)
		}
		// Every jump goes to 3 from the end of the window just loaded, never backwards.
		var seqs []int
		jumps := 0
		for _, u := range o.requests("seg-") {
			n, _ := strconv.Atoi(strings.TrimSuffix(u[strings.LastIndex(u, "seg-")+4:], ".ts"))
			if len(seqs) > 0 && n <= seqs[len(seqs)-1] {
				t.Errorf("requested seg-%d after seg-%d", n, seqs[len(seqs)-1])
			}
			if len(seqs) > 0 && n > seqs[len(seqs)-1]+1 {
				jumps++
			}
			seqs = append(seqs, n)
		}
		if jumps != r.Skips {
			t.Errorf("%d jumps in the requests %v, %d Skips", jumps, seqs, r.Skips)
		}
		checkClock(t, r, 40*time.Second, o.dur)
	})
}

func TestVODPlaysToTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.vod = 5
		o.delay = func(uint64) time.Duration { return 100 * time.Millisecond }
		p := New(Config{URL: "http://origin.test/vod/index.m3u8", Client: &http.Client{Transport: o}})
		start := time.Now()
		if err := p.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		// 10 s of media, from the first segment's arrival at 0.1 s.
		if got := time.Since(start); got != 10100*time.Millisecond {
			t.Errorf("Run returned after %v, want 10.1s", got)
		}
		r := p.Result()
		if !r.Ended || r.Segments != 5 || r.Bytes != 5000 || r.Stalls != 0 || r.Buffer != 0 {
			t.Errorf("VOD gave %+v; want Ended with 5 segments, 5000 bytes, no stall", r)
		}
		if got := o.requests("seg-")[0]; !strings.HasSuffix(got, "/seg-0.ts") {
			t.Errorf("first segment request %s, want seg-0.ts", got)
		}
	})
}

func TestMultivariantPlaysTheChosenVariant(t *testing.T) {
	for _, tc := range []struct {
		variant int
		want    string
	}{{0, "/v0/"}, {1, "/v1/"}, {2, "/v2/"}, {7, "/v2/"}, {-1, "/v0/"}} {
		t.Run(strconv.Itoa(tc.variant), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newFakeOrigin()
				r := play(t, o, "/master.m3u8", Config{Variant: tc.variant}, 10*time.Second)
				if !r.Started || r.Segments == 0 {
					t.Fatalf("not playing: %+v", r)
				}
				for _, u := range append(o.requests("seg-"), o.requests("index.m3u8")...) {
					if !strings.Contains(u, tc.want) {
						t.Errorf("Variant %d requested %s, want only %s…", tc.variant, u, tc.want)
					}
				}
			})
		})
	}
}

func TestStartupRetriesUntilReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.fail = func(path string, _ int) int {
			if time.Since(o.start) < 1500*time.Millisecond {
				return http.StatusServiceUnavailable
			}
			return 0
		}
		o.delay = func(uint64) time.Duration { return 100 * time.Millisecond }
		r := play(t, o, "/live/index.m3u8", Config{}, 5*time.Second)
		// Tries every 250 ms: the one at 1.5 s succeeds, its first segment comes at 1.6 s.
		if r.Startup != 1600*time.Millisecond || r.Errors != 0 {
			t.Errorf("Startup %v, Errors %d; want 1.6s, 0 (start-up retries are not errors)", r.Startup, r.Errors)
		}
	})
}

func TestStartFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		p := New(Config{URL: "http://origin.test/page.html", Client: &http.Client{Transport: o}})
		start := time.Now()
		err := p.Run(t.Context())
		if !errors.Is(err, playlist.ErrMalformed) {
			t.Errorf("Run on an HTML page: %v, want ErrMalformed", err)
		}
		if got := time.Since(start); got < 9*time.Second || got > startWindow {
			t.Errorf("Run gave up after %v, want about %v", got, startWindow)
		}
		if p.Result().Started {
			t.Error("Started on an HTML page")
		}
	})
	if err := New(Config{URL: "ftp://origin.test/x.m3u8"}).Run(t.Context()); err == nil {
		t.Error("Run on an ftp URL: nil error")
	}
}

func TestCMCD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.query = "tok=a%2Fb"
		o.delay = func(uint64) time.Duration { return 150 * time.Millisecond }
		play(t, o, "/live/index.m3u8", Config{CMCD: true, SessionID: "s1"}, 10*time.Second)
		reqs := o.requests("seg-")
		format := regexp.MustCompile(`^bl=(0|[1-9]\d*00),d=2000,ot=v,sid="s1"$`)
		for i, raw := range reqs {
			u, _ := url.Parse(raw)
			if !strings.HasPrefix(u.RawQuery, "tok=a%2Fb&CMCD=bl%3D") {
				t.Errorf("query %q: want the segment's own query, then CMCD=, url-escaped", u.RawQuery)
			}
			got := u.Query().Get("CMCD")
			if !format.MatchString(got) {
				t.Errorf("CMCD %q does not match %s", got, format)
				continue
			}
			// bl: nothing buffered, then 2 s, then 4 s less the 0.15 s played, rounded down.
			if want := []string{"0", "2000", "3800"}; i < len(want) && format.FindStringSubmatch(got)[1] != want[i] {
				t.Errorf("request %d: CMCD %q, want bl=%s", i, got, want[i])
			}
		}
		if len(reqs) < 3 {
			t.Fatalf("%d segment requests, want at least 3", len(reqs))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		play(t, o, "/live/index.m3u8", Config{}, 10*time.Second)
		for _, u := range o.requests("") {
			if strings.Contains(u, "CMCD") {
				t.Errorf("CMCD off, but requested %s", u)
			}
		}
	})
}

func TestFailedSegmentsRetriedAndCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.fail = func(path string, try int) int {
			switch {
			case path == "/live/seg-4.ts" && try <= 2:
				return http.StatusInternalServerError
			case path == "/live/seg-6.ts":
				return http.StatusBadGateway
			}
			return 0
		}
		got := map[string]bool{}
		r := play(t, o, "/live/index.m3u8", Config{OnSegment: func(uri string, _ []byte) { got[uri] = true }}, 20*time.Second)
		if r.Errors != 5 || r.Dropped != 1 {
			t.Errorf("Errors %d, Dropped %d; want 5 (2 for seg-4, 3 for seg-6), 1", r.Errors, r.Dropped)
		}
		if a, b := o.triesOf("/live/seg-4.ts"), o.triesOf("/live/seg-6.ts"); a != 3 || b != 3 {
			t.Errorf("seg-4 tried %d times, seg-6 %d; want 3, 3", a, b)
		}
		if !got["http://origin.test/live/seg-4.ts"] || got["http://origin.test/live/seg-6.ts"] || !got["http://origin.test/live/seg-7.ts"] {
			t.Errorf("OnSegment saw %v; want seg-4 (third try) and seg-7, not seg-6", got)
		}
		// seg-6's 2 s are jumped over, not waited for.
		checkClock(t, r, 20*time.Second, o.dur)
	})
}

func TestResultWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOrigin()
		o.delay = func(seq uint64) time.Duration { return time.Duration(seq%4) * time.Second }
		p := New(Config{URL: "http://origin.test/live/index.m3u8", Client: &http.Client{Transport: o}})
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		var last Result
		for ctx.Err() == nil {
			r := p.Result()
			if r.Segments < last.Segments || r.StallTime < last.StallTime || r.Stalls < last.Stalls || r.Bytes < last.Bytes {
				t.Fatalf("figures went backwards: %+v after %+v", r, last)
			}
			last = r
			time.Sleep(37 * time.Millisecond)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if last.Segments == 0 {
			t.Error("no segment in 60 s")
		}
	})
}
