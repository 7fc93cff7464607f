package tsingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
)

// readSegments opens src and segments what it reads until n segments are cut.
func readSegments(t *testing.T, src string, n int) []Segment {
	t.Helper()
	segs, err := collectSegments(t.Context(), src, n)
	require.NoError(t, err)
	checkStarts(t, segs, n)
	return segs
}

// checkStarts checks that at least n segments came, each starting with the PAT.
func checkStarts(t *testing.T, segs []Segment, n int) {
	t.Helper()
	require.GreaterOrEqual(t, len(segs), n)
	for _, seg := range segs {
		require.Equal(t, uint16(patPID), pid(seg.Data))
	}
}

// collectSegments opens src and segments it until n segments are out (a read may complete
// more than one), within 30 s. It may run off the test's goroutine: it reports, not fails.
func collectSegments(ctx context.Context, src string, n int) ([]Segment, error) {
	u, err := url.Parse(src)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// An encoder that listens (SRT) may not listen yet: retry for a while.
	var rc io.ReadCloser
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		// The silence bound is generous: an encoder started a moment ago on a loaded machine
		// may take seconds to send its first packet (TestOpenErrors tests the bound).
		if rc, err = Open(ctx, u, SourceConfig{Timeout: 10 * time.Second}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	s := New(Config{TargetDuration: 500 * time.Millisecond})
	var segs []Segment
	buf := make([]byte, 64<<10)
	for len(segs) < n {
		k, err := rc.Read(buf)
		segs = append(segs, s.Write(buf[:k])...)
		if err != nil {
			return segs, fmt.Errorf("after %d segments: %w", len(segs), err)
		}
	}
	return segs, nil
}

// liveH264 is hlstest.TSH264 with a keyframe every 0.48 s rather than every 2 s: these tests
// check that each kind of source delivers segments, and on the 500 ms grid collectSegments
// cuts, two of them come in about a second and a half instead of six.
var liveH264 = []string{"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-re", "-f", "lavfi", "-i", "sine=frequency=440",
	"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "12", "-c:a", "aac"}

func TestOpenHTTPStream(t *testing.T) {
	skipShort(t)
	t.Parallel()
	src := hlstest.StartTSFanout(t, liveH264)
	readSegments(t, src.URL, 2)
}

func TestOpenUDP(t *testing.T) {
	skipShort(t)
	t.Parallel()
	port := hlstest.FreeUDPPort(t)
	hlstest.StartEncoder(t, liveH264, fmt.Sprintf("udp://127.0.0.1:%d?pkt_size=1316", port))
	readSegments(t, fmt.Sprintf("udp://@127.0.0.1:%d", port), 2)
}

// TestOpenUDPRTP: TS in RTP (RFC 2250), as broadcast plants send it, is unwrapped.
func TestOpenUDPRTP(t *testing.T) {
	skipShort(t)
	t.Parallel()
	hlstest.RequireTool(t, "ffmpeg")
	port := hlstest.FreeUDPPort(t)
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, liveH264...)
	cmd := exec.Command("ffmpeg", append(args, "-f", "rtp_mpegts", fmt.Sprintf("rtp://127.0.0.1:%d", port))...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	readSegments(t, fmt.Sprintf("udp://127.0.0.1:%d", port), 2)
}

func TestUnwrapRTP(t *testing.T) {
	ts := append([]byte{syncByte}, make([]byte, PacketSize-1)...)
	rtp := append([]byte{0x80, 33, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2}, ts...)
	assert.Equal(t, ts, unwrapRTP(rtp))
	withCSRC := append([]byte{0x81, 33, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9, 9, 9}, ts...)
	assert.Equal(t, ts, unwrapRTP(withCSRC))
	withExt := append([]byte{0x90, 33, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xBE, 0xDE, 0, 1, 7, 7, 7, 7}, ts...)
	assert.Equal(t, ts, unwrapRTP(withExt))
	assert.Equal(t, ts, unwrapRTP(ts), "plain TS as it is")
	junk := []byte{0x80, 1, 2}
	assert.Equal(t, junk, unwrapRTP(junk), "too short for RTP: left to the segmenter's sync")
	lying := []byte{0x9F, 33, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0xFF, 0xFF}
	assert.Equal(t, lying, unwrapRTP(lying), "an extension beyond the datagram")
}

// TestOpenUDPMulticast joins a multicast group on the loopback interface of a network
// namespace of its own (the host's loopback has no multicast), by running itself again
// inside one.
func TestOpenUDPMulticast(t *testing.T) {
	if os.Getenv("TSINGEST_NETNS") == "" {
		skipShort(t)
		if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 || exec.Command("unshare", "--net", "true").Run() != nil {
			t.Skip("needs root, unshare(1) and ip(8) to make a network namespace")
		}
		script := `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$0" -test.run '^TestOpenUDPMulticast$' -test.v`
		cmd := exec.Command("unshare", "--net", "sh", "-c", script, os.Args[0])
		cmd.Env = append(os.Environ(), "TSINGEST_NETNS=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestOpenUDPMulticast", "%s", out)
		return
	}
	port := hlstest.FreeUDPPort(t)
	hlstest.StartEncoder(t, liveH264, fmt.Sprintf("udp://239.255.7.7:%d?pkt_size=1316&ttl=1", port))
	readSegments(t, fmt.Sprintf("udp://@239.255.7.7:%d?iface=lo", port), 2)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	u, _ := url.Parse(notFound.URL + "/x.ts")
	_, err := Open(t.Context(), u, SourceConfig{Timeout: time.Second})
	require.ErrorContains(t, err, "HTTP 404")

	// A server that answers and then sends nothing: the read ends after the timeout.
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer silent.Close()
	defer close(release)
	u, _ = url.Parse(silent.URL + "/x.ts")
	rc, err := Open(t.Context(), u, SourceConfig{Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	_, err = rc.Read(make([]byte, 100))
	require.True(t, errors.Is(err, ErrSilent), "%v", err)
	require.NoError(t, rc.Close())

	for _, bad := range []string{"ftp://x/y", "udp://@notanip:5000", "udp://@127.0.0.1:99999", "udp://@127.0.0.1"} {
		u, err := url.Parse(bad)
		require.NoError(t, err)
		_, err = Open(t.Context(), u, SourceConfig{Timeout: time.Second})
		require.Error(t, err, bad)
	}
}

func TestOpenSRTCaller(t *testing.T) {
	skipShort(t)
	t.Parallel()
	port := hlstest.FreeUDPPort(t)
	hlstest.StartEncoder(t, liveH264, fmt.Sprintf("srt://127.0.0.1:%d?mode=listener&pkt_size=1316", port))
	readSegments(t, fmt.Sprintf("srt://127.0.0.1:%d?streamid=tv&latency=200", port), 2)
}

func TestOpenSRTListener(t *testing.T) {
	skipShort(t)
	t.Parallel()
	port := hlstest.FreeUDPPort(t)
	type result struct {
		segs []Segment
		err  error
	}
	done := make(chan result, 1)
	go func() {
		segs, err := collectSegments(t.Context(), fmt.Sprintf("srt://127.0.0.1:%d?mode=listener", port), 2)
		done <- result{segs, err}
	}()
	// The encoder calls until the gateway listens (ffmpeg gives up on a refused call: retry).
	for deadline := time.Now().Add(10 * time.Second); ; {
		enc := hlstest.StartEncoder(t, liveH264, fmt.Sprintf("srt://127.0.0.1:%d?pkt_size=1316&streamid=cam1", port))
		select {
		case r := <-done: // collectSegments ends within its 30 s
			require.NoError(t, r.err)
			checkStarts(t, r.segs, 2)
			return
		case <-enc.Done():
			require.True(t, time.Now().Before(deadline), "the encoder's calls all failed")
		}
	}
}
