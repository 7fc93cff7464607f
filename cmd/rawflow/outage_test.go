//go:build e2e

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/playlist"
)

// TestGatewayOutageUnderFFmpeg: two ffmpeg players play through proxies for 45 s; the
// gateway is SIGKILLed in the middle and started again 5 s later, with Redis and without.
// The proxies serve their last playlist and the segments they hold meanwhile, so both
// players record at least 40 s, and the media sequence the proxies serve never goes back.
// (Without Redis, a restarted gateway numbering from the wall clock is another change:
// until it is in, the sequence check of that subtest fails.)
func TestGatewayOutageUnderFFmpeg(t *testing.T) {
	t.Parallel()
	hlstest.RequireTool(t, "ffmpeg")
	hlstest.RequireTool(t, "ffprobe")
	for _, withRedis := range []bool{true, false} {
		t.Run(map[bool]string{true: "redis", false: "memory"}[withRedis], func(t *testing.T) {
			t.Parallel()
			fx := newFaultFixture(t)
			addr := faultAddrs(t, 1)[0]
			start := func() *faultProc {
				args := []string{"gateway", "--listen", addr, "--channel", "demo=demo", "--peer-addrs", "loopback"}
				if withRedis {
					args = append(args, "--redis", fx.redis.URL())
				}
				p := fx.start("gateway", args...)
				waitHTTP(t, "http://"+addr+"/readyz", 20*time.Second)
				return p
			}
			gw := start()
			peers := fx.startPeers("http://"+addr, 2)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()

			// Watch the media sequence each proxy serves.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var backwards []string
			for i, p := range peers {
				wg.Go(func() {
					var last uint64
					for ctx.Err() == nil {
						if code, body := getBody(p.url + "/live/demo/index.m3u8"); code == http.StatusOK {
							if m, err := playlist.ParseOrigin(body); err == nil {
								if seq := m.MediaSequence; seq < last {
									mu.Lock()
									backwards = append(backwards, fmt.Sprintf("proxy %d: %d -> %d", i+1, last, seq))
									mu.Unlock()
								} else {
									last = seq
								}
							}
						}
						select {
						case <-ctx.Done():
						case <-time.After(500 * time.Millisecond):
						}
					}
				})
			}

			dir := t.TempDir()
			type result struct {
				dur    float64
				stderr string
			}
			results := make([]result, len(peers))
			var players sync.WaitGroup
			for i, p := range peers {
				players.Go(func() {
					out := filepath.Join(dir, fmt.Sprintf("p%d.ts", i))
					var stderr strings.Builder
					cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-loglevel", "warning", "-i", p.url+"/live/demo/index.m3u8",
						"-t", "45", "-c", "copy", "-f", "mpegts", out)
					cmd.Stderr = &stderr
					_ = cmd.Run()
					probe, _ := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", out).Output()
					d, _ := strconv.ParseFloat(strings.TrimSpace(string(probe)), 64)
					results[i] = result{d, stderr.String()}
				})
			}
			time.Sleep(15 * time.Second) // the players play steadily (a fault's timing, not synchronisation)
			gw.kill()
			time.Sleep(5 * time.Second) // the outage
			start()
			players.Wait()
			cancel()
			wg.Wait()
			for i, r := range results {
				t.Logf("player %d recorded %.1f s; ffmpeg said: %s", i+1, r.dur, r.stderr)
				assert.GreaterOrEqual(t, r.dur, 40.0, "player %d rode through the outage", i+1)
			}
			assert.Empty(t, backwards, "the media sequence never goes back")
		})
	}
}

// getBody GETs url with the fault tests' client: the status and the body (0 on failure).
func getBody(url string) (int, []byte) {
	resp, err := faultClient().Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, b
}
