package playlist_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

// One test per grafov/m3u8 pitfall (shared/research/gateway-anchors.md §c) that applies to
// this package, each checked against a golden file testdata/pitfall<N>.*; go test -update
// rewrites them. Pitfall #3 (GetAllSegments after the ring wraps) has no counterpart: there
// is no ring, Segments are plain slices.

// golden compares got with testdata/name.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create the golden files")
	assert.Equal(t, string(want), string(got))
}

// window turns an origin playlist into our own, naming segments and init sections the way
// the gateway would: each from its own made-up bytes.
func window(m *playlist.OriginMedia) playlist.Window {
	w := playlist.Window{
		TargetDuration: m.TargetDuration, MediaSequence: m.MediaSequence, DiscontinuitySequence: m.DiscontinuitySequence,
		Ended: m.Ended, Version: m.Version, PlaylistType: m.PlaylistType, Header: m.Header, Trailer: m.Trailer,
	}
	for _, s := range m.Segments {
		g := seg(s.Seq, s.Duration, s.Discontinuity)
		g.Title, g.Key, g.ProgramDateTime, g.Tags = s.Title, s.Key, s.ProgramDateTime, s.Tags
		if s.Init != nil {
			r := initRef(s.Init.URI)
			g.Init = &r
		}
		w.Segments = append(w.Segments, g)
	}
	return w
}

// relay parses an origin playlist, renders it in both forms into golden files, and checks
// that the proxies' form parses back to the same window.
func relay(t *testing.T, name, origin string) (*playlist.OriginMedia, playlist.Window) {
	t.Helper()
	m, err := playlist.ParseOrigin([]byte(origin))
	require.NoError(t, err)
	w := window(m)
	golden(t, name+".players.m3u8", playlist.Render(w, playlist.ForPlayers))
	proxies := playlist.Render(w, playlist.ForProxies)
	golden(t, name+".proxies.m3u8", proxies)
	back, err := playlist.ParseGateway(proxies)
	require.NoError(t, err)
	if w.Version <= playlist.MinVersion(w) {
		w.Version = 0 // what ParseGateway reports for a version the features need anyway
	}
	assert.Equal(t, &w, back)
	return m, w
}

// grafov decodes a live playlist with winsize 8 and Encode writes only the oldest 8.
func TestPitfall1WinsizeMoreThan8Segments(t *testing.T) {
	m, _ := relay(t, "pitfall1", ffmpegLive(100, 12))
	require.Len(t, m.Segments, 12)
	b, err := os.ReadFile(filepath.Join("testdata", "pitfall1.players.m3u8"))
	require.NoError(t, err)
	assert.Equal(t, 12, strings.Count(string(b), "#EXTINF:"))
	assert.Contains(t, string(b), "\n111-")
}

// grafov pads Segments with nil entries up to its capacity.
func TestPitfall2NoNilPadding(t *testing.T) {
	m, w := relay(t, "pitfall2", ffmpegLive(7, 3))
	require.Len(t, m.Segments, 3)
	require.Len(t, w.Segments, 3)
	for _, s := range m.Segments {
		require.NotEmpty(t, s.URI)
	}
	back, err := playlist.ParseGateway(playlist.Render(w, playlist.ForProxies))
	require.NoError(t, err)
	assert.Len(t, back.Segments, 3)
}

// grafov's Encode caches its output and mutates the playlist: not safe for concurrent use.
func TestPitfall4RenderIsUncachedAndConcurrent(t *testing.T) {
	w := windowCases[5].w
	want := playlist.Render(w, playlist.ForProxies)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.Equal(t, want, playlist.Render(w, playlist.ForProxies)) })
	}
	wg.Wait()
	w.Segments = append([]playlist.Segment(nil), w.Segments...)
	w.Segments[0].Name = "changed.m4s"
	assert.Contains(t, string(playlist.Render(w, playlist.ForProxies)), "\nchanged.m4s\n", "no stale output")
}

// grafov raises TARGETDURATION to ceil(EXTINF): 6 with EXTINF 6.006 becomes 7.
func TestPitfall5TargetDurationNotRaised(t *testing.T) {
	m, _ := relay(t, "pitfall5", "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.006,\na.ts\n#EXTINF:6.006,\nb.ts\n")
	assert.Equal(t, 6, m.TargetDuration)
}

// grafov writes only the playlist's first MAP: a new init after a discontinuity is lost.
func TestPitfall6MapPerSegmentAfterDiscontinuity(t *testing.T) {
	m, w := relay(t, "pitfall6", hdr(2, "#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"a/init.mp4\"\n#EXTINF:2,\na/1.m4s\n#EXTINF:2,\na/2.m4s\n",
		"#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"b/init.mp4\"\n#EXTINF:2,\nb/1.m4s\n#EXTINF:2,\nb/2.m4s\n"))
	assert.Equal(t, []string{"a/init.mp4", "a/init.mp4", "b/init.mp4", "b/init.mp4"}, initURIs(m))
	// Once the first MAP's segment has left the window, its successor carries the MAP.
	w.MediaSequence, w.Segments = w.Segments[1].Seq, w.Segments[1:]
	golden(t, "pitfall6_slid.players.m3u8", playlist.Render(w, playlist.ForPlayers))
}

func initURIs(m *playlist.OriginMedia) []string {
	var out []string
	for _, s := range m.Segments {
		out = append(out, s.Init.URI)
	}
	return out
}

// grafov compares keys by pointer and writes the first key twice.
func TestPitfall7KeyWrittenOnce(t *testing.T) {
	_, w := relay(t, "pitfall7", hdr(2, "#EXT-X-KEY:METHOD=AES-128,URI=\"k1.key\",IV=0x1\n#EXTINF:2,\n1.ts\n#EXTINF:2,\n2.ts\n",
		"#EXT-X-KEY:METHOD=AES-128,URI=\"k1.key\",IV=0x1\n#EXTINF:2,\n3.ts\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\n4.ts\n"))
	b := string(playlist.Render(w, playlist.ForPlayers))
	assert.Equal(t, 1, strings.Count(b, `URI="k1.key"`), "an equal key is not written again")
	assert.Equal(t, 1, strings.Count(b, "METHOD=NONE"))
	w.Segments[0].Key = &playlist.Key{Method: "AES-128", URI: "k1.key", IV: "0x1"} // equal value, other pointer
	assert.Equal(t, b, string(playlist.Render(w, playlist.ForPlayers)))
}

// grafov decodes a byte range without offset as @0.
func TestPitfall8ByteRangeOffsetNeverZero(t *testing.T) {
	m, err := playlist.ParseOrigin([]byte(hdr(2, "#EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"720@0\"\n",
		"#EXTINF:2,\n#EXT-X-BYTERANGE:1000@720\nmain.mp4\n#EXTINF:2,\n#EXT-X-BYTERANGE:1200\nmain.mp4\n#EXTINF:2,\n#EXT-X-BYTERANGE:900\nmain.mp4\n")))
	require.NoError(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "init %s %d@%d\n", m.Segments[0].Init.URI, m.Segments[0].Init.Range.Length, m.Segments[0].Init.Range.Offset)
	for _, s := range m.Segments {
		fmt.Fprintf(&b, "%d %s %d@%d\n", s.Seq, s.URI, s.Range.Length, s.Range.Offset)
	}
	golden(t, "pitfall8.ranges.txt", []byte(b.String()))
	assert.Equal(t, int64(1720), m.Segments[1].Range.Offset)
	assert.Equal(t, int64(2920), m.Segments[2].Range.Offset)
}

// grafov drops every tag it does not know.
func TestPitfall9UnknownTagsSurvive(t *testing.T) {
	kept := []string{
		"#EXT-X-INDEPENDENT-SEGMENTS", `#EXT-X-DEFINE:NAME="v",VALUE="1"`, "#EXT-X-FUTURE-HEADER:1",
		`#EXT-X-DATERANGE:ID="ad,1",START-DATE="2024-05-01T12:00:00Z",PLANNED-DURATION=30`, "#EXT-X-CUE-OUT:30",
		"#EXT-X-GAP", "#EXT-X-BITRATE:800", "#EXT-X-FUTURE-SEGMENT", "#EXT-X-FUTURE-TRAILER:x",
	}
	dropped := []string{"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", "#EXT-X-PART-INF:PART-TARGET=0.5",
		`#EXT-X-PART:DURATION=0.5,URI="p.0.mp4"`, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p.1.mp4"`,
		`#EXT-X-RENDITION-REPORT:URI="../r/i.m3u8",LAST-MSN=3`}
	in := hdr(2, kept[0]+"\n"+kept[1]+"\n"+kept[2]+"\n"+dropped[0]+"\n"+dropped[1]+"\n",
		kept[3]+"\n#EXTINF:2,\n1.ts\n"+kept[4]+"\n"+kept[5]+"\n"+dropped[2]+"\n#EXTINF:2,\n"+kept[6]+"\n"+kept[7]+"\n2.ts\n",
		kept[8]+"\n"+dropped[3]+"\n"+dropped[4]+"\n")
	_, w := relay(t, "pitfall9", in)
	for _, f := range []playlist.Form{playlist.ForPlayers, playlist.ForProxies} {
		b := string(playlist.Render(w, f))
		for _, l := range kept {
			assert.Contains(t, b, "\n"+l+"\n")
		}
		for _, l := range dropped {
			assert.NotContains(t, b, l)
		}
	}
}

// grafov writes custom tags in map order, one per name.
func TestPitfall10DeterministicOrder(t *testing.T) {
	w := window(mustOrigin(t, hdr(2, "#EXT-X-B:1\n#EXT-X-A:1\n#EXT-X-B:2\n#EXTINF:2,\n1.ts\n#EXT-X-Z\n#EXT-X-Y\n#EXT-X-Z\n#EXTINF:2,\n2.ts\n")))
	want := playlist.Render(w, playlist.ForProxies)
	golden(t, "pitfall10.proxies.m3u8", want)
	for range 50 {
		require.Equal(t, want, playlist.Render(w, playlist.ForProxies))
	}
	assert.Equal(t, []string{"#EXT-X-Z", "#EXT-X-Y", "#EXT-X-Z"}, w.Segments[1].Tags)
}

// grafov writes PROGRAM-DATE-TIME with RFC3339Nano, which trims trailing zeros.
func TestPitfall11ProgramDateTimeVerbatim(t *testing.T) {
	m, _ := relay(t, "pitfall11", hdr(2, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:25.720Z\n#EXTINF:2,\n1.ts\n",
		"#EXT-X-PROGRAM-DATE-TIME:2024-05-01T14:00:27.700+0200\n#EXTINF:2,\n2.ts\n"))
	assert.Equal(t, "2024-05-01T12:00:25.720Z", m.Segments[0].ProgramDateTime)
	assert.Equal(t, "2024-05-01T14:00:27.700+0200", m.Segments[1].ProgramDateTime)
}

// grafov writes the obsolete EXT-X-ALLOW-CACHE:NO for EVENT, and KEY before DISCONTINUITY.
func TestPitfall12EventWritesNoAllowCache(t *testing.T) {
	_, w := relay(t, "pitfall12", hdr(2, "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2,\n1.ts\n",
		"#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\n2.ts\n"))
	b := string(playlist.Render(w, playlist.ForPlayers))
	assert.NotContains(t, b, "ALLOW-CACHE")
	assert.Contains(t, b, "\n#EXT-X-PLAYLIST-TYPE:EVENT\n")
	assert.Contains(t, b, "\n#EXT-X-DISCONTINUITY\n#EXT-X-KEY:", "DISCONTINUITY first")
}

// grafov's playlist capacity: 2000 segments must parse and render whole.
func TestPitfall13TwoThousandSegments(t *testing.T) {
	m := mustOrigin(t, ffmpegLive(5, playlist.MaxSegments))
	require.Len(t, m.Segments, playlist.MaxSegments)
	w := window(m)
	players := playlist.Render(w, playlist.ForPlayers)
	proxies := playlist.Render(w, playlist.ForProxies)
	back, err := playlist.ParseGateway(proxies)
	require.NoError(t, err)
	w.Version = 0
	require.Equal(t, &w, back)
	lines := strings.Split(strings.TrimSuffix(string(players), "\n"), "\n")
	summary := fmt.Sprintf("segments %d\nlines %d\nfirst %s\nlast %s\nplayers sha256 %x\nproxies sha256 %x\n",
		len(back.Segments), len(lines), lines[5], lines[len(lines)-1], sha256.Sum256(players), sha256.Sum256(proxies))
	golden(t, "pitfall13.summary.txt", []byte(summary))
	_, err = playlist.ParseOrigin([]byte(ffmpegLive(5, playlist.MaxSegments+1)))
	require.ErrorIs(t, err, playlist.ErrTooManySegments)
}

// grafov's strict mode is not validation: every rejected origin case, with its error.
func TestPitfall14ValidationRejectsBadInput(t *testing.T) {
	var b strings.Builder
	for _, tc := range originCases {
		if tc.wantErr == nil {
			continue
		}
		_, err := playlist.ParseOrigin([]byte(tc.in))
		require.ErrorIs(t, err, tc.wantErr, tc.name)
		msg := err.Error()
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		fmt.Fprintf(&b, "%s\n\t%s\n", tc.name, msg)
	}
	golden(t, "pitfall14.errors.txt", []byte(b.String()))
}

func mustOrigin(t *testing.T, in string) *playlist.OriginMedia {
	t.Helper()
	m, err := playlist.ParseOrigin([]byte(in))
	require.NoError(t, err)
	return m
}
