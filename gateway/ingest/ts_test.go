package ingest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
)

// BenchmarkTSListingDelay measures the delay from the bytes that complete a segment (the
// start of the next keyframe) to the segment being listed in the window: segmenting,
// SHA-256 of the segment, rendering both playlist forms. Baseline in the same run: the
// Write calls that complete no segment. Input: 12 s of ffmpeg H.264/AAC in 1316-byte
// chunks (one UDP datagram each).
func BenchmarkTSListingDelay(b *testing.B) {
	ts := hlstest.EncodeTS(b, hlstest.TSH264, 12)
	cfg := testConfig()
	const chunk = 1316
	var listing, plain []time.Duration
	for b.Loop() {
		in := newTS(nil, 0, &recordingWindow{}, NewOrigin(OriginConfig{Timeout: cfg.OriginTimeout}), cfg, cfg.Logger, nil)
		for i := 0; i < len(ts); i += chunk {
			start := time.Now()
			listed := in.list(b.Context(), in.seg.Write(ts[i:min(i+chunk, len(ts))]))
			if d := time.Since(start); listed {
				listing = append(listing, d)
			} else {
				plain = append(plain, d)
			}
		}
	}
	if len(listing) == 0 {
		b.Fatal("no segment listed")
	}
	slices.Sort(listing)
	slices.Sort(plain)
	b.ReportMetric(float64(listing[len(listing)/2].Microseconds()), "µs-listing-p50")
	b.ReportMetric(float64(listing[len(listing)*99/100].Microseconds()), "µs-listing-p99")
	b.ReportMetric(float64(plain[len(plain)/2].Nanoseconds())/1000, "µs-other-write-p50")
}

func TestProbeTellsStreamFromPlaylist(t *testing.T) {
	ts := hlstest.EncodeTS(t, hlstest.TSAAC, 2)
	const m3u8 = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			_, _ = io.WriteString(w, m3u8)
			return
		}
		_, _ = w.Write(ts)
	}))
	defer srv.Close()
	o := NewOrigin(OriginConfig{Timeout: 10 * time.Second, Sources: []*url.URL{mustURL(t, srv.URL)}})

	u, _ := url.Parse(srv.URL + "/live.m3u8")
	body, stream, err := o.probe(t.Context(), u)
	require.NoError(t, err)
	assert.Nil(t, stream)
	assert.Equal(t, m3u8, string(body))

	u, _ = url.Parse(srv.URL + "/live.ts")
	body, stream, err = o.probe(t.Context(), u)
	require.NoError(t, err)
	require.NotNil(t, stream)
	assert.Nil(t, body)
	got, err := io.ReadAll(stream)
	require.NoError(t, err)
	assert.Equal(t, ts, got, "the stream is read from its first byte, peeked ones included")
	require.NoError(t, stream.Close())
}

// TestTSIngestGarbageSource: a source that streams bytes that are not MPEG-TS is dropped
// (and retried later), and nothing is listed.
func TestTSIngestGarbageSource(t *testing.T) {
	garbage := bytes.Repeat([]byte("not a transport stream; "), 8<<10) // 192 KiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 16 { // 3 MiB, then the response ends
			if _, err := w.Write(garbage); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/live.ts")
	win := &recordingWindow{}
	cfg := testConfig()
	in := newTS([]*url.URL{u}, 0, win, NewOrigin(OriginConfig{Timeout: cfg.OriginTimeout, Sources: []*url.URL{u}}), cfg, cfg.Logger, nil)
	listed, err := in.session(t.Context())
	assert.False(t, listed)
	require.ErrorIs(t, err, errNotTS)
	assert.Empty(t, win.segments())
}
