//go:build e2e

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/internal/redistest"
	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// tsGateway starts a gateway segmenting the MPEG-TS at src into 2 s segments, with n
// proxies, and waits until it lists at least three segments.
func tsGateway(t *testing.T, src string, n int) *stack {
	t.Helper()
	st := startStack(t, gateway.Config{PeerAddrs: swarm.AddrLoopback, OriginTimeout: 3 * time.Second, PollInterval: 200 * time.Millisecond,
		Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{src}}}}, n)
	awaitSegments(t, st.gw.url, 3, 30*time.Second)
	return st
}

// awaitSegments waits until the gateway's playlist lists at least n segments.
func awaitSegments(t *testing.T, base string, n int, within time.Duration) *playlist.Window {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		if w := gatewayWindow(t, base); len(w.Segments) >= n {
			return w
		}
		require.True(t, time.Now().Before(deadline), "fewer than %d segments listed within %v", n, within)
	}
}

// TestTSIngestSources: ffmpeg encodes a live test source (H.264/AAC with a keyframe every
// 2 s, audio-only AAC, H.265/AAC) to continuous MPEG-TS over HTTP, UDP and SRT; the gateway
// segments it. Each listed segment starts with the PAT, the PMT and (video) a keyframe, as
// ffprobe reads it; durations are within bounds; ffmpeg plays the channel from the
// gateway without an error.
func TestTSIngestSources(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	hlstest.RequireTool(t, "ffprobe")
	udp := func(recipe []string) func(t *testing.T) string {
		return func(t *testing.T) string {
			port := hlstest.FreeUDPPort(t)
			hlstest.StartEncoder(t, recipe, fmt.Sprintf("udp://127.0.0.1:%d?pkt_size=1316", port))
			return fmt.Sprintf("udp://@127.0.0.1:%d", port)
		}
	}
	httpSrc := func(recipe []string) func(t *testing.T) string {
		return func(t *testing.T) string { return hlstest.StartTSFanout(t, recipe).URL }
	}
	srt := func(recipe []string) func(t *testing.T) string {
		return func(t *testing.T) string {
			port := hlstest.FreeUDPPort(t)
			hlstest.StartEncoder(t, recipe, fmt.Sprintf("srt://127.0.0.1:%d?mode=listener&pkt_size=1316", port))
			return fmt.Sprintf("srt://127.0.0.1:%d?streamid=tv", port)
		}
	}
	for _, tc := range []struct {
		name   string
		video  bool
		source func(t *testing.T) string
	}{
		{"http-h264", true, httpSrc(hlstest.TSH264)},
		{"udp-h264", true, udp(hlstest.TSH264)},
		{"srt-h264", true, srt(hlstest.TSH264)},
		{"udp-aac", false, udp(hlstest.TSAAC)},
		{"http-h265", true, httpSrc(hlstest.TSH265)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := tsGateway(t, tc.source(t), 0)
			w := gatewayWindow(t, st.gw.url)
			dir := t.TempDir()
			for _, seg := range w.Segments {
				lo, hi := 1.5, 2.5 // audio-only: cut on PES packets of several AAC frames
				if tc.video {
					lo, hi = 1.99, 2.01 // a keyframe every 2 s
				}
				assert.True(t, seg.Duration >= lo && seg.Duration <= hi, "segment %d lasts %.3f s", seg.Seq, seg.Duration)
				code, body := fetch(t, st.gw.url+"/live/tv/"+seg.Name)
				require.Equal(t, 200, code)
				checkTSSegment(t, dir, seg.Name, body, tc.video)
			}
			r := hlstest.Play(t.Context(), t, st.gw.url+"/live/tv/index.m3u8", 6)
			require.NoError(t, r.Err, r.Stderr)
			assert.Empty(t, r.Problems)
			assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 5*time.Second)
		})
	}
}

// checkTSSegment asserts that a segment starts with the PAT, then the PMT, then (video) a
// packet of a keyframe, as ffprobe reads it, and that ffmpeg decodes it without an error.
func checkTSSegment(t *testing.T, dir, name string, b []byte, video bool) {
	t.Helper()
	require.Zero(t, len(b)%188, "%s: whole packets", name)
	require.GreaterOrEqual(t, len(b), 3*188)
	pid := func(p []byte) int { return int(p[1]&0x1F)<<8 | int(p[2]) }
	require.Equal(t, 0, pid(b), "%s starts with the PAT", name)
	// The PAT's first program (after the pointer field and the 8-byte section header).
	pat := b[5:]
	pmtPID := int(pat[10]&0x1F)<<8 | int(pat[11])
	require.Equal(t, pmtPID, pid(b[188:]), "%s: then the PMT", name)
	require.Equal(t, byte(0x02), b[188+5], "%s: table_id of a PMT", name)

	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	kind := "a:0"
	if video {
		kind = "v:0"
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", kind, "-show_entries", "packet=flags",
		"-read_intervals", "%+#1", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	flags := strings.TrimSpace(string(out))
	require.NotEmpty(t, flags, "%s: ffprobe finds the stream", name)
	if video {
		assert.True(t, strings.HasPrefix(flags, "K"), "%s: first video packet's flags %q: a keyframe", name, flags)
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-")
	stderr, err := cmd.CombinedOutput()
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(stderr)), "%s decodes without an error", name)
}

// TestTSIngestSourceRestart: the encoder behind an HTTP MPEG-TS source is killed and
// started again (timestamps from the start again) while ffmpeg plays through a proxy: the
// gateway reconnects, the restart is a discontinuity, the media sequence never decreases,
// and the player plays on.
func TestTSIngestSourceRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	src := hlstest.StartTSFanout(t, hlstest.TSH264)
	st := tsGateway(t, src.URL, 1)
	before := gatewayWindow(t, st.gw.url)

	// Watch the media sequence while it all happens.
	stop := make(chan struct{})
	var watched sync.WaitGroup
	var seqs []uint64
	watched.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				seqs = append(seqs, gatewayWindow(t, st.gw.url).MediaSequence)
			}
		}
	})
	played := make(chan hlstest.PlayResult, 1)
	go func() { played <- hlstest.Play(t.Context(), t, st.peers[0].url+"/live/tv/index.m3u8", 20) }()
	awaitSegments(t, st.gw.url, len(before.Segments)+2, 20*time.Second) // the player is under way
	src.Restart(t)
	r := <-played
	close(stop)
	watched.Wait()
	require.NoError(t, r.Err, r.Stderr)
	assert.Empty(t, r.Problems)
	assert.GreaterOrEqual(t, hlstest.Duration(t, r.Output), 16*time.Second)

	after := gatewayWindow(t, st.gw.url)
	assert.Greater(t, after.MediaSequence, before.MediaSequence)
	disc := after.DiscontinuitySequence > before.DiscontinuitySequence
	for _, s := range after.Segments {
		disc = disc || s.Discontinuity
	}
	assert.True(t, disc, "the restart is marked")
	require.NotEmpty(t, seqs)
	for i := 1; i < len(seqs); i++ {
		require.GreaterOrEqual(t, seqs[i], seqs[i-1], "media sequence never decreases")
	}
	st.checkRecorders(t)
}

// TestTSIngestTwoGateways: two gateways that joined the same live MPEG-TS source seconds
// apart list the same segments (same bytes) under the same sequence numbers: each on its
// own registry (the numbers come from the stream's clock), and both on one Redis (the
// fleet's timeline).
func TestTSIngestTwoGateways(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end to end: not in -short")
	}
	src := hlstest.StartTSFanout(t, hlstest.TSH264)
	t.Run("own registries", func(t *testing.T) {
		t.Parallel()
		first := tsGateway(t, src.URL, 0)
		second := tsGateway(t, src.URL, 0)
		sameSegments(t, first.gw.url, second.gw.url, 2)
	})
	t.Run("one Redis", func(t *testing.T) {
		t.Parallel()
		r := newRunner(t)
		url := redistest.Start(t)
		cfg := gateway.Config{PeerAddrs: swarm.AddrLoopback, OriginTimeout: 3 * time.Second, PollInterval: 200 * time.Millisecond, PeerKey: []byte("k")}
		var urls []string
		for range 2 {
			gw := r.redisGateway(t, cfg, src.URL, url)
			awaitSegments(t, gw.url, 3, 30*time.Second)
			urls = append(urls, gw.url)
		}
		sameSegments(t, urls[0], urls[1], 2)
	})
}

// sameSegments checks that the gateways at first and second list the same segments under
// the same numbers, at least minCommon of them in common once first lists six.
func sameSegments(t *testing.T, first, second string, minCommon int) {
	t.Helper()
	a := awaitSegments(t, first, 6, 30*time.Second)
	b := gatewayWindow(t, second)
	names := map[uint64]string{}
	for _, s := range a.Segments {
		names[s.Seq] = s.Name
	}
	common := 0
	for _, s := range b.Segments {
		if name, ok := names[s.Seq]; ok {
			common++
			assert.Equal(t, name, s.Name, "segment %d: same digest on both gateways", s.Seq)
			assert.Equal(t, s.Digest, digestOf(a, s.Seq))
		}
	}
	assert.GreaterOrEqual(t, common, minCommon, "first lists %d…, second %d…", a.MediaSequence, b.MediaSequence)
}

func digestOf(w *playlist.Window, seq uint64) playlist.Digest {
	for _, s := range w.Segments {
		if s.Seq == seq {
			return s.Digest
		}
	}
	return playlist.Digest{}
}
