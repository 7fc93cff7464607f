package playlist_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

// ffmpegLive is what `ffmpeg -f hls -hls_time 2 -hls_list_size n` writes: n segments of
// 2 s numbered from seq.
func ffmpegLive(seq, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:%d\n", seq)
	for i := seq; i < seq+n; i++ {
		fmt.Fprintf(&b, "#EXTINF:2.000000,\nseg_%05d.ts\n", i)
	}
	return b.String()
}

// segs numbers segments of 2 s named like ffmpegLive's.
func segs(seq, n int) []playlist.OriginSegment {
	var out []playlist.OriginSegment
	for i := seq; i < seq+n; i++ {
		out = append(out, playlist.OriginSegment{Seq: uint64(i), URI: fmt.Sprintf("seg_%05d.ts", i), Duration: 2})
	}
	return out
}

type originCase struct {
	name    string
	in      string
	want    *playlist.OriginMedia
	wantErr error
}

// originCases are ParseOrigin's table; they also seed FuzzParseOrigin.
var originCases = []originCase{
	{
		name: "ffmpeg live",
		in:   ffmpegLive(17, 6),
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 17, Segments: segs(17, 6)},
	},
	{
		name: "more than 8 segments (grafov winsize 8)",
		in:   ffmpegLive(100, 12),
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 100, Segments: segs(100, 12)},
	},
	{
		name: "more than grafov's initial capacity of 1024",
		in:   ffmpegLive(0, playlist.MaxSegments),
		want: &playlist.OriginMedia{TargetDuration: 2, Segments: segs(0, playlist.MaxSegments)},
	},
	{
		name: "discontinuity",
		in: "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n" +
			"#EXT-X-DISCONTINUITY-SEQUENCE:3\n" +
			"#EXTINF:2.000000,\nseg_00005.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\nseg_00006.ts\n",
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 5, DiscontinuitySequence: 3,
			Segments: []playlist.OriginSegment{
				{Seq: 5, URI: "seg_00005.ts", Duration: 2},
				{Seq: 6, URI: "seg_00006.ts", Duration: 2, Discontinuity: true},
			}},
	},
	{
		name: "ended",
		in:   ffmpegLive(0, 2) + "#EXT-X-ENDLIST\n",
		want: &playlist.OriginMedia{TargetDuration: 2, Ended: true, Segments: segs(0, 2)},
	},
	{
		name: "VOD with more than 8 segments",
		in: strings.Replace(ffmpegLive(0, 10), "#EXT-X-VERSION:3\n", "#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n", 1) +
			"#EXT-X-ENDLIST\n",
		want: &playlist.OriginMedia{TargetDuration: 2, Ended: true, Segments: segs(0, 10)},
	},
	{
		name: "EXTINF above TARGETDURATION keeps the tag value (grafov ceil)",
		in:   "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:6.006,\na.ts\n#EXTINF:5.5,\nb.ts\n",
		want: &playlist.OriginMedia{TargetDuration: 6, MediaSequence: 1, Segments: []playlist.OriginSegment{
			{Seq: 1, URI: "a.ts", Duration: 6.006},
			{Seq: 2, URI: "b.ts", Duration: 5.5},
		}},
	},
	{
		name: "CRLF, blank lines, titles, absolute URIs, tags we ignore",
		in: "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-INDEPENDENT-SEGMENTS\r\n#EXT-X-TARGETDURATION:4\r\n\r\n" +
			"#EXT-X-MEDIA-SEQUENCE:9\r\n#EXT-X-KEY:METHOD=NONE\r\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000+0000\r\n" +
			"#EXTINF:3.96,title one\r\n   \r\nhttps://cdn.example/a/9.ts?x=1\r\n# a comment\r\n#EXT-X-RAWFLOW-SEGMENT:junk\r\n" +
			"#EXTINF:4,\r\n../b/10.ts",
		want: &playlist.OriginMedia{TargetDuration: 4, MediaSequence: 9, Segments: []playlist.OriginSegment{
			{Seq: 9, URI: "https://cdn.example/a/9.ts?x=1", Duration: 3.96},
			{Seq: 10, URI: "../b/10.ts", Duration: 4},
		}},
	},
	{
		name: "no segments yet",
		in:   "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n",
		want: &playlist.OriginMedia{TargetDuration: 2},
	},
	{
		name: "no MEDIA-SEQUENCE means 0",
		in:   "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg_00000.ts\n",
		want: &playlist.OriginMedia{TargetDuration: 2, Segments: segs(0, 1)},
	},
	{
		name: "last sequence number is MaxUint64",
		in:   "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:18446744073709551614\n#EXTINF:2,\na\n#EXTINF:2,\nb\n",
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 1<<64 - 2, Segments: []playlist.OriginSegment{
			{Seq: 1<<64 - 2, URI: "a", Duration: 2},
			{Seq: 1<<64 - 1, URI: "b", Duration: 2},
		}},
	},

	{name: "empty", in: "", wantErr: playlist.ErrMalformed},
	{name: "blank", in: " \n\n", wantErr: playlist.ErrMalformed},
	{name: "garbage", in: "<html><body>502 Bad Gateway</body></html>\n", wantErr: playlist.ErrMalformed},
	{name: "byte order mark", in: "\ufeff" + ffmpegLive(0, 1), wantErr: playlist.ErrMalformed},
	{name: "too large", in: "#EXTM3U\n" + strings.Repeat("#", playlist.MaxPlaylistBytes), wantErr: playlist.ErrTooLarge},
	{name: "too many segments", in: ffmpegLive(0, playlist.MaxSegments+1), wantErr: playlist.ErrTooManySegments},
	{
		name:    "multivariant",
		in:      "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=1280x720\nhi/index.m3u8\n",
		wantErr: playlist.ErrNotMedia,
	},
	{
		name:    "multivariant with renditions",
		in:      "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"en.m3u8\"\n",
		wantErr: playlist.ErrNotMedia,
	},
	{
		name:    "media and multivariant mixed",
		in:      ffmpegLive(0, 1) + "#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n",
		wantErr: playlist.ErrNotMedia,
	},
	{name: "only #EXTM3U", in: "#EXTM3U\n", wantErr: playlist.ErrMalformed},
	{name: "no TARGETDURATION", in: "#EXTM3U\n#EXTINF:2,\na.ts\n", wantErr: playlist.ErrMalformed},
	{name: "two TARGETDURATIONs", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-TARGETDURATION:3\n", wantErr: playlist.ErrMalformed},
	{name: "fractional TARGETDURATION", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2.5\n", wantErr: playlist.ErrMalformed},
	{name: "negative TARGETDURATION", in: "#EXTM3U\n#EXT-X-TARGETDURATION:-2\n", wantErr: playlist.ErrMalformed},
	{name: "huge TARGETDURATION", in: "#EXTM3U\n#EXT-X-TARGETDURATION:3601\n", wantErr: playlist.ErrMalformed},
	{name: "negative duration", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:-2,\na.ts\n", wantErr: playlist.ErrMalformed},
	{name: "NaN duration", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:NaN,\na.ts\n", wantErr: playlist.ErrMalformed},
	{name: "infinite duration", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:+Inf,\na.ts\n", wantErr: playlist.ErrMalformed},
	{name: "huge duration", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:3600.5,\na.ts\n", wantErr: playlist.ErrMalformed},
	{name: "duration not a number", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:two,\na.ts\n", wantErr: playlist.ErrMalformed},
	{
		name:    "empty duration (grafov would reuse the previous one)",
		in:      "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXTINF:,\nb.ts\n",
		wantErr: playlist.ErrMalformed,
	},
	{name: "EXTINF without comma", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2\na.ts\n", wantErr: playlist.ErrMalformed},
	{
		name:    "URI without EXTINF (grafov would drop it)",
		in:      "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\nb.ts\n#EXTINF:2,\nc.ts\n",
		wantErr: playlist.ErrMalformed,
	},
	{name: "two EXTINFs for one URI", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXTINF:3,\na.ts\n", wantErr: playlist.ErrMalformed},
	{name: "EXTINF without URI", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n", wantErr: playlist.ErrMalformed},
	{
		name:    "media sequence overflows",
		in:      "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:2,\na\n#EXTINF:2,\nb\n",
		wantErr: playlist.ErrMalformed,
	},
	{name: "media sequence not a number", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:x\n", wantErr: playlist.ErrMalformed},
	{name: "byte range", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@0\na.ts\n", wantErr: playlist.ErrMalformed},
	{name: "init section", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n", wantErr: playlist.ErrMalformed},
	{name: "encrypted", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n", wantErr: playlist.ErrMalformed},
	{name: "grafov panics on a bare WV tag", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#WV-CYPHER-VERSION\n", wantErr: playlist.ErrMalformed},
}

func TestParseOrigin(t *testing.T) {
	for _, tc := range originCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := playlist.ParseOrigin([]byte(tc.in))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestParseOriginReadsPlayersForm: the players' form is a valid origin playlist, so one
// gateway can pull from another.
func TestParseOriginReadsPlayersForm(t *testing.T) {
	for _, tc := range windowCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := playlist.ParseOrigin(playlist.Render(tc.w, playlist.ForPlayers))
			require.NoError(t, err)
			want := &playlist.OriginMedia{
				TargetDuration:        tc.w.TargetDuration,
				MediaSequence:         tc.w.MediaSequence,
				DiscontinuitySequence: tc.w.DiscontinuitySequence,
				Ended:                 tc.w.Ended,
			}
			for _, s := range tc.w.Segments {
				want.Segments = append(want.Segments, playlist.OriginSegment{
					Seq: s.Seq, URI: s.Name, Duration: s.Duration, Discontinuity: s.Discontinuity,
				})
			}
			assert.Equal(t, want, got)
		})
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, tc := range originCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := playlist.ParseOrigin(data)
		if err != nil {
			requireClassified(t, err)
			return
		}
		require.LessOrEqual(t, len(m.Segments), playlist.MaxSegments)
		require.GreaterOrEqual(t, m.TargetDuration, 0)
		for i, s := range m.Segments {
			require.Equal(t, m.MediaSequence+uint64(i), s.Seq, "segment %d", i)
			require.NotEmpty(t, s.URI)
			require.False(t, s.Duration < 0 || s.Duration > 3600 || s.Duration != s.Duration, "duration %v", s.Duration)
		}
	})
}

// requireClassified: every error wraps exactly one sentinel.
func requireClassified(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, e := range []error{playlist.ErrTooLarge, playlist.ErrTooManySegments, playlist.ErrNotMedia, playlist.ErrMalformed} {
		if errors.Is(err, e) {
			n++
		}
	}
	require.Equal(t, 1, n, "error %q wraps %d sentinels", err, n)
}
