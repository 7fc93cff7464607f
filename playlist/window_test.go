package playlist_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// seg is segment seq of a window, its bytes standing in for a transport stream.
func seg(seq uint64, duration float64, disc bool) playlist.Segment {
	body := []byte("segment " + strconv.FormatUint(seq, 10))
	d := playlist.Sum(body)
	return playlist.Segment{
		Seq: seq, Name: playlist.SegmentName(seq, d, ".ts"), Duration: duration,
		Discontinuity: disc, Digest: d, Size: int64(len(body)),
	}
}

type windowCase struct {
	name string // also the golden files' base name
	w    playlist.Window
}

// windowCases are Render's golden cases; they also seed FuzzParseGateway.
var windowCases = []windowCase{
	{"empty", playlist.Window{TargetDuration: 2}},
	{"live", playlist.Window{TargetDuration: 2, MediaSequence: 1234, Segments: []playlist.Segment{
		seg(1234, 2, false), seg(1235, 2.002, false), seg(1236, 1.96, false),
	}}},
	{"discontinuity", playlist.Window{TargetDuration: 6, MediaSequence: 40, DiscontinuitySequence: 2, Segments: []playlist.Segment{
		seg(40, 6.006, false), seg(41, 6.006, true), seg(42, 0.5, false),
	}}},
	{"first discontinuity", playlist.Window{TargetDuration: 4, MediaSequence: 7, Segments: []playlist.Segment{
		seg(7, 4, false), seg(8, 4, true),
	}}},
	{"ended", playlist.Window{TargetDuration: 2, MediaSequence: 0, DiscontinuitySequence: 1, Ended: true, Segments: []playlist.Segment{
		seg(0, 2, false), seg(1, 1.25, false),
	}}},
	{"fmp4", playlist.Window{TargetDuration: 2, MediaSequence: 10, PlaylistType: "EVENT",
		Header:  []string{"#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START:TIME-OFFSET=-6"},
		Trailer: []string{"#EXT-X-CUE-IN"},
		Segments: []playlist.Segment{
			with(seg(10, 2, false), func(s *playlist.Segment) {
				s.Init, s.ProgramDateTime, s.Title = &initRefA, "2024-05-01T12:00:25.720Z", "first"
				s.Tags = []string{`#EXT-X-DATERANGE:ID="ad,1",START-DATE="2024-05-01T12:00:25Z",X-COM-EXAMPLE="a,b"`, "#EXT-X-CUE-OUT:4"}
			}),
			with(seg(11, 2, false), func(s *playlist.Segment) { s.Init = &initRefA }),
			with(seg(12, 2, true), func(s *playlist.Segment) { s.Init, s.Tags = &initRefB, []string{"#EXT-X-GAP"} }),
			with(seg(13, 2, false), func(s *playlist.Segment) { s.Init = &initRefB }),
			with(seg(14, 2, true), func(s *playlist.Segment) { s.Init = &initRefB }),
		}}},
	{"encrypted", playlist.Window{TargetDuration: 4, MediaSequence: 3, Version: 7, Segments: []playlist.Segment{
		with(seg(3, 4, false), func(s *playlist.Segment) { s.Key = key1 }),
		with(seg(4, 4, false), func(s *playlist.Segment) { s.Key = key1 }),
		with(seg(5, 4, false), func(s *playlist.Segment) { s.Key = key2 }),
		seg(6, 4, false),
		with(seg(7, 4, false), func(s *playlist.Segment) { s.Key = keyFP }),
	}}},
	{"vod", playlist.Window{TargetDuration: 2, PlaylistType: "VOD", Ended: true, Segments: []playlist.Segment{
		seg(0, 2, false), seg(1, 2, false),
	}}},
}

// Init sections of the gateway's own playlists, named like segments.
var (
	initRefA = initRef("a")
	initRefB = initRef("b")
)

func initRef(body string) playlist.InitRef {
	d := playlist.Sum([]byte("init " + body))
	return playlist.InitRef{Name: "init-" + d.String()[:16] + ".mp4", Digest: d, Size: int64(len("init " + body))}
}

// with returns s changed by f.
func with(s playlist.Segment, f func(*playlist.Segment)) playlist.Segment {
	f(&s)
	return s
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range windowCases {
		for form, suffix := range map[playlist.Form]string{playlist.ForPlayers: ".players.m3u8", playlist.ForProxies: ".proxies.m3u8"} {
			name := strings.ReplaceAll(tc.name, " ", "_") + suffix
			t.Run(name, func(t *testing.T) {
				got := playlist.Render(tc.w, form)
				path := filepath.Join("testdata", name)
				if *update {
					require.NoError(t, os.WriteFile(path, got, 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "run go test -update to create the golden files")
				assert.Equal(t, string(want), string(got))
				assert.Equal(t, got, playlist.Render(tc.w, form), "not deterministic")
			})
		}
	}
}

func TestRenderForPlayersHasNoDigests(t *testing.T) {
	for _, tc := range windowCases {
		assert.NotContains(t, string(playlist.Render(tc.w, playlist.ForPlayers)), "RAWFLOW", tc.name)
	}
}

func TestRenderForProxiesTagsEverySegmentBeforeEXTINF(t *testing.T) {
	w := windowCases[2].w
	lines := strings.Split(string(playlist.Render(w, playlist.ForProxies)), "\n")
	var tags int
	for i, l := range lines {
		if strings.HasPrefix(l, "#EXT-X-RAWFLOW-SEGMENT:") {
			s := w.Segments[tags]
			assert.Equal(t, `#EXT-X-RAWFLOW-SEGMENT:DIGEST="`+s.Digest.String()+`",SIZE=`+strconv.FormatInt(s.Size, 10), l)
			assert.True(t, strings.HasPrefix(lines[i+1], "#EXTINF:"), "line after the tag: %q", lines[i+1])
			tags++
		}
	}
	assert.Equal(t, len(w.Segments), tags)
}

func TestRenderWritesTargetDurationAsIs(t *testing.T) {
	w := playlist.Window{TargetDuration: 6, Segments: []playlist.Segment{seg(0, 6.9, false)}}
	assert.Contains(t, string(playlist.Render(w, playlist.ForPlayers)), "\n#EXT-X-TARGETDURATION:6\n")
}

func TestParseGatewayRoundTrip(t *testing.T) {
	for _, tc := range windowCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := playlist.ParseGateway(playlist.Render(tc.w, playlist.ForProxies))
			require.NoError(t, err)
			assert.Equal(t, &tc.w, got)
		})
	}
}

// gatewayErrorCases are inputs ParseGateway must reject; they also seed FuzzParseGateway.
var gatewayErrorCases = []struct {
	name    string
	in      string
	wantErr error
}{
	{"two digests for one segment", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + digestLine + digestLine + "#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"digest without segment", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + digestLine, playlist.ErrMalformed},
	{"upper-case digest", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + strings.ToUpper(digestLine) + "#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"short digest", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-RAWFLOW-SEGMENT:DIGEST=\"abcd\",SIZE=1\n#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"negative size", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + strings.Replace(digestLine, "SIZE=11", "SIZE=-11", 1) + "#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"zero size", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + strings.Replace(digestLine, "SIZE=11", "SIZE=0", 1) + "#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"attributes swapped", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-RAWFLOW-SEGMENT:SIZE=11,DIGEST=\"" + playlist.Sum(nil).String() + "\"\n#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"multivariant", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n", playlist.ErrNotMedia},
	{"too large", "#EXTM3U\n" + strings.Repeat("\n", playlist.MaxPlaylistBytes), playlist.ErrTooLarge},
	{"garbage", "{}", playlist.ErrMalformed},
	{"empty", "", playlist.ErrMalformed},
	{"MAP without init tag", dropLine(playlist.Render(windowCases[5].w, playlist.ForProxies), "#EXT-X-RAWFLOW-INIT:", 1), playlist.ErrMalformed},
	{"init tag not followed by MAP", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + initLine + "\n" + digestLine + "#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"init tag at the end", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + initLine, playlist.ErrMalformed},
	{"init tag twice", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + initLine + initLine + "#EXT-X-MAP:URI=\"i.mp4\"\n", playlist.ErrMalformed},
	{"bad init digest", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-RAWFLOW-INIT:DIGEST=\"ab\",SIZE=1\n#EXT-X-MAP:URI=\"i.mp4\"\n", playlist.ErrMalformed},
	{"MAP with BYTERANGE", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + initLine + "#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"1@0\"\n", playlist.ErrMalformed},
	{"byte range", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + digestLine + "#EXT-X-BYTERANGE:10@0\n#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"key method unknown", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-256,URI=\"k\"\n" + digestLine + "#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
	{"unknown RAWFLOW tag", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-RAWFLOW-OTHER:1\n" + digestLine + "#EXTINF:2.000,\na.ts\n", playlist.ErrMalformed},
}

var initLine = `#EXT-X-RAWFLOW-INIT:DIGEST="` + playlist.Sum(nil).String() + `",SIZE=0` + "\n"

var digestLine = `#EXT-X-RAWFLOW-SEGMENT:DIGEST="` + playlist.Sum(nil).String() + `",SIZE=11` + "\n"

// dropLine removes the nth (0-based) line starting with prefix.
func dropLine(b []byte, prefix string, n int) string {
	lines := strings.SplitAfter(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			if n == 0 {
				return strings.Join(append(lines[:i:i], lines[i+1:]...), "")
			}
			n--
		}
	}
	panic("no such line")
}

func TestParseGatewayErrors(t *testing.T) {
	for _, tc := range gatewayErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := playlist.ParseGateway([]byte(tc.in))
			require.ErrorIs(t, err, tc.wantErr)
			assert.Nil(t, got)
		})
	}
}

func TestParseGatewayTooManySegments(t *testing.T) {
	w := playlist.Window{TargetDuration: 2}
	for i := range uint64(playlist.MaxSegments + 1) {
		w.Segments = append(w.Segments, seg(i, 2, false))
	}
	_, err := playlist.ParseGateway(playlist.Render(w, playlist.ForProxies))
	require.ErrorIs(t, err, playlist.ErrTooManySegments)

	w.Segments = w.Segments[:playlist.MaxSegments]
	got, err := playlist.ParseGateway(playlist.Render(w, playlist.ForProxies))
	require.NoError(t, err)
	assert.Equal(t, &w, got)
}

func FuzzParseGateway(f *testing.F) {
	for _, tc := range windowCases {
		f.Add(playlist.Render(tc.w, playlist.ForProxies))
	}
	for _, tc := range gatewayErrorCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := playlist.ParseGateway(data)
		if err != nil {
			requireClassified(t, err)
			return
		}
		// What parsed renders, and that rendering parses back to the same Window, except
		// that durations are now rounded to the three decimals Render writes.
		b := playlist.Render(*w, playlist.ForProxies)
		w2, err := playlist.ParseGateway(b)
		require.NoError(t, err, "%s", b)
		for i := range w.Segments {
			w.Segments[i].Duration, err = strconv.ParseFloat(strconv.FormatFloat(w.Segments[i].Duration, 'f', 3, 64), 64)
			require.NoError(t, err)
		}
		require.Equal(t, w, w2)
		require.True(t, bytes.Equal(b, playlist.Render(*w2, playlist.ForProxies)), "render not stable")
	})
}

// TestParseGatewaySegmentsNotHeld: a segment the gateway does not hold yet (VOD fetched on
// demand) carries no digest tag; it parses with Size 0, and the round trip holds.
func TestParseGatewaySegmentsNotHeld(t *testing.T) {
	w := windowCases[1].w
	w.Segments = append([]playlist.Segment(nil), w.Segments...)
	w.Segments[0].Digest, w.Segments[0].Size = playlist.Digest{}, 0
	body := playlist.Render(w, playlist.ForProxies)
	assert.Equal(t, len(w.Segments)-1, strings.Count(string(body), "#EXT-X-RAWFLOW-SEGMENT:"))
	got, err := playlist.ParseGateway(body)
	require.NoError(t, err)
	assert.Equal(t, w, *got)
	_, err = playlist.ParseGateway(playlist.Render(w, playlist.ForPlayers))
	require.NoError(t, err, "the players' form reads as a playlist of segments not held")
}
