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

// hdr is a media playlist's first lines with the given target duration.
func hdr(td int, more ...string) string {
	return fmt.Sprintf("#EXTM3U\n#EXT-X-TARGETDURATION:%d\n", td) + strings.Join(more, "")
}

type originCase struct {
	name    string
	in      string
	want    *playlist.OriginMedia
	wantErr error
}

// Values shared by the expectations below: segments under one tag share one pointer.
var (
	initMP4   = &playlist.Init{URI: "init.mp4"}
	initA     = &playlist.Init{URI: "a/init.mp4"}
	initB     = &playlist.Init{URI: "b/init.mp4"}
	initRange = &playlist.Init{URI: "main.mp4", Range: &playlist.ByteRange{Length: 720, Offset: 0}}
	key1      = &playlist.Key{Method: "AES-128", URI: "https://keys.example/k?id=1,2", IV: "0x0123456789abcdef0123456789ABCDEF"}
	key2      = &playlist.Key{Method: "AES-128", URI: "k2.key"}
	keyFP     = &playlist.Key{Method: "SAMPLE-AES", URI: "skd://key42", KeyFormat: "com.apple.streamingkeydelivery", KeyFormatVersions: "1"}
)

// originCases are ParseOrigin's table; they also seed FuzzParseOrigin.
var originCases = []originCase{
	{
		name: "ffmpeg live",
		in:   ffmpegLive(17, 6),
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 17, Version: 3, Segments: segs(17, 6)},
	},
	{
		name: "more than 8 segments (grafov winsize 8)",
		in:   ffmpegLive(100, 12),
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 100, Version: 3, Segments: segs(100, 12)},
	},
	{
		name: "more than grafov's initial capacity of 1024",
		in:   ffmpegLive(0, playlist.MaxSegments),
		want: &playlist.OriginMedia{TargetDuration: 2, Version: 3, Segments: segs(0, playlist.MaxSegments)},
	},
	{
		name: "discontinuity",
		in: "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n" +
			"#EXT-X-DISCONTINUITY-SEQUENCE:3\n" +
			"#EXTINF:2.000000,\nseg_00005.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\nseg_00006.ts\n",
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 5, DiscontinuitySequence: 3, Version: 3,
			Segments: []playlist.OriginSegment{
				{Seq: 5, URI: "seg_00005.ts", Duration: 2},
				{Seq: 6, URI: "seg_00006.ts", Duration: 2, Discontinuity: true},
			}},
	},
	{
		name: "ended",
		in:   ffmpegLive(0, 2) + "#EXT-X-ENDLIST\n",
		want: &playlist.OriginMedia{TargetDuration: 2, Ended: true, Version: 3, Segments: segs(0, 2)},
	},
	{
		name: "VOD with more than 8 segments",
		in: strings.Replace(ffmpegLive(0, 10), "#EXT-X-VERSION:3\n", "#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n", 1) +
			"#EXT-X-ENDLIST\n",
		want: &playlist.OriginMedia{TargetDuration: 2, Ended: true, Version: 3, PlaylistType: "VOD", Segments: segs(0, 10)},
	},
	{
		name: "EVENT",
		in:   strings.Replace(ffmpegLive(0, 2), "#EXT-X-VERSION:3\n", "#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n", 1),
		want: &playlist.OriginMedia{TargetDuration: 2, Version: 3, PlaylistType: "EVENT", Segments: segs(0, 2)},
	},
	{
		name: "EXTINF above TARGETDURATION keeps the tag value (grafov ceil)",
		in:   "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:6.006,\na.ts\n#EXTINF:5.5,\nb.ts\n",
		want: &playlist.OriginMedia{TargetDuration: 6, MediaSequence: 1, Version: 3, Segments: []playlist.OriginSegment{
			{Seq: 1, URI: "a.ts", Duration: 6.006},
			{Seq: 2, URI: "b.ts", Duration: 5.5},
		}},
	},
	{
		name: "CRLF, blank lines, titles, absolute URIs, comments, an origin's RAWFLOW tag",
		in: "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-INDEPENDENT-SEGMENTS\r\n#EXT-X-TARGETDURATION:4\r\n\r\n" +
			"#EXT-X-MEDIA-SEQUENCE:9\r\n#EXT-X-KEY:METHOD=NONE\r\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000+0000\r\n" +
			"#EXTINF:3.96,title one, with a comma\r\n   \r\nhttps://cdn.example/a/9.ts?x=1\r\n# a comment\r\n#EXT-X-RAWFLOW-SEGMENT:junk\r\n" +
			"#EXTINF:4,\r\n../b/10.ts",
		want: &playlist.OriginMedia{TargetDuration: 4, MediaSequence: 9, Version: 3, Header: []string{"#EXT-X-INDEPENDENT-SEGMENTS"},
			Segments: []playlist.OriginSegment{
				{Seq: 9, URI: "https://cdn.example/a/9.ts?x=1", Duration: 3.96, Title: "title one, with a comma",
					ProgramDateTime: "2024-05-01T12:00:00.000+0000"},
				{Seq: 10, URI: "../b/10.ts", Duration: 4},
			}},
	},
	{
		name: "no segments yet",
		in:   "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n",
		want: &playlist.OriginMedia{TargetDuration: 2, Version: 3},
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
	{
		name: "ffmpeg fMP4 live",
		in: "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
			"#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\nseg3.m4s\n#EXTINF:2.000000,\nseg4.m4s\n",
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 3, Version: 7, Header: []string{"#EXT-X-INDEPENDENT-SEGMENTS"},
			Segments: []playlist.OriginSegment{
				{Seq: 3, URI: "seg3.m4s", Duration: 2, Init: initMP4},
				{Seq: 4, URI: "seg4.m4s", Duration: 2, Init: initMP4},
			}},
	},
	{
		name: "new MAP after a discontinuity",
		in: hdr(2, "#EXT-X-VERSION:6\n#EXT-X-MAP:URI=\"a/init.mp4\"\n#EXTINF:2,\na/1.m4s\n",
			"#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"b/init.mp4\"\n#EXTINF:2,\nb/1.m4s\n#EXTINF:2,\nb/2.m4s\n"),
		want: &playlist.OriginMedia{TargetDuration: 2, Version: 6, Segments: []playlist.OriginSegment{
			{Seq: 0, URI: "a/1.m4s", Duration: 2, Init: initA},
			{Seq: 1, URI: "b/1.m4s", Duration: 2, Init: initB, Discontinuity: true},
			{Seq: 2, URI: "b/2.m4s", Duration: 2, Init: initB},
		}},
	},
	{
		name: "byte ranges with and without offsets",
		in: hdr(2, "#EXT-X-VERSION:4\n#EXTINF:2,\n#EXT-X-BYTERANGE:1000@0\nmain.ts\n#EXTINF:2,\n#EXT-X-BYTERANGE:1200\nmain.ts\n",
			"#EXT-X-BYTERANGE:800\n#EXTINF:2,\nmain.ts\n#EXTINF:2,\n#EXT-X-BYTERANGE:500@10\nother.ts\n#EXTINF:2,\nwhole.ts\n"),
		want: &playlist.OriginMedia{TargetDuration: 2, Version: 4, Segments: []playlist.OriginSegment{
			{Seq: 0, URI: "main.ts", Duration: 2, Range: &playlist.ByteRange{Length: 1000, Offset: 0}},
			{Seq: 1, URI: "main.ts", Duration: 2, Range: &playlist.ByteRange{Length: 1200, Offset: 1000}},
			{Seq: 2, URI: "main.ts", Duration: 2, Range: &playlist.ByteRange{Length: 800, Offset: 2200}},
			{Seq: 3, URI: "other.ts", Duration: 2, Range: &playlist.ByteRange{Length: 500, Offset: 10}},
			{Seq: 4, URI: "whole.ts", Duration: 2},
		}},
	},
	{
		name: "MAP with BYTERANGE, single-file fMP4",
		in: hdr(5, "#EXT-X-VERSION:7\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"720@0\"\n",
			"#EXTINF:4.96907,\n#EXT-X-BYTERANGE:25312@720\nmain.mp4\n#EXTINF:4.96907,\n#EXT-X-BYTERANGE:25440\nmain.mp4\n#EXT-X-ENDLIST\n"),
		want: &playlist.OriginMedia{TargetDuration: 5, MediaSequence: 1, Version: 7, PlaylistType: "VOD", Ended: true,
			Segments: []playlist.OriginSegment{
				{Seq: 1, URI: "main.mp4", Duration: 4.96907, Init: initRange, Range: &playlist.ByteRange{Length: 25312, Offset: 720}},
				{Seq: 2, URI: "main.mp4", Duration: 4.96907, Init: initRange, Range: &playlist.ByteRange{Length: 25440, Offset: 26032}},
			}},
	},
	{
		name: "AES-128 with IV, rotation without IV, METHOD=NONE, SAMPLE-AES",
		in: hdr(2, "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k?id=1,2\",IV=0x0123456789abcdef0123456789ABCDEF\n",
			"#EXTINF:2,\n1.ts\n#EXTINF:2,\n2.ts\n#EXT-X-KEY:METHOD=AES-128, URI=\"k2.key\"\n#EXTINF:2,\n3.ts\n",
			"#EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\n4.ts\n",
			"#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key42\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"\n#EXTINF:2,\n5.ts\n"),
		want: &playlist.OriginMedia{TargetDuration: 2, Segments: []playlist.OriginSegment{
			{Seq: 0, URI: "1.ts", Duration: 2, Key: key1},
			{Seq: 1, URI: "2.ts", Duration: 2, Key: key1},
			{Seq: 2, URI: "3.ts", Duration: 2, Key: key2},
			{Seq: 3, URI: "4.ts", Duration: 2},
			{Seq: 4, URI: "5.ts", Duration: 2, Key: keyFP},
		}},
	},
	{
		name: "PDT verbatim, DATERANGE with commas in quoted values",
		in: hdr(2, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:25.720Z\n",
			"#EXT-X-DATERANGE:ID=\"ad,1\",CLASS=\"com.example,ads\",START-DATE=\"2024-05-01T12:00:25Z\",X-COM-EXAMPLE=\"a,b\"\n",
			"#EXTINF:2,\n1.ts\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T14:00:27.72+02:00\n#EXTINF:2,\n2.ts\n"),
		want: &playlist.OriginMedia{TargetDuration: 2, Segments: []playlist.OriginSegment{
			{Seq: 0, URI: "1.ts", Duration: 2, ProgramDateTime: "2024-05-01T12:00:25.720Z",
				Tags: []string{`#EXT-X-DATERANGE:ID="ad,1",CLASS="com.example,ads",START-DATE="2024-05-01T12:00:25Z",X-COM-EXAMPLE="a,b"`}},
			{Seq: 1, URI: "2.ts", Duration: 2, ProgramDateTime: "2024-05-01T14:00:27.72+02:00"},
		}},
	},
	{
		name: "unknown tags in header, segment and trailer positions",
		in: "#EXTM3U\n#EXT-X-FUTURE:1\n#EXT-X-TARGETDURATION:2\n#EXT-X-START:TIME-OFFSET=-6\n#EXT-X-DEFINE:NAME=\"v\",VALUE=\"1\"\n" +
			"#EXTINF:2,\n1.ts\n#EXT-X-CUE-OUT:30\n#EXT-X-GAP\n#EXTINF:2,\n#EXT-X-BITRATE:800\n#EXT-X-NEW-THING\n2.ts\n" +
			"#EXT-X-CUE-IN\n#EXT-X-ENDLIST\n#EXT-X-AFTER-END:x\n",
		want: &playlist.OriginMedia{TargetDuration: 2, Ended: true,
			Header: []string{"#EXT-X-FUTURE:1", "#EXT-X-START:TIME-OFFSET=-6", `#EXT-X-DEFINE:NAME="v",VALUE="1"`},
			Segments: []playlist.OriginSegment{
				{Seq: 0, URI: "1.ts", Duration: 2},
				{Seq: 1, URI: "2.ts", Duration: 2, Tags: []string{"#EXT-X-CUE-OUT:30", "#EXT-X-GAP", "#EXT-X-BITRATE:800", "#EXT-X-NEW-THING"}},
			},
			Trailer: []string{"#EXT-X-CUE-IN", "#EXT-X-AFTER-END:x"},
		},
	},
	{
		name: "a segment tag starts the segments: unknown tags after it are the segment's",
		in:   hdr(2, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00Z\n#EXT-X-X:1\n#EXT-X-MEDIA-SEQUENCE:4\n#EXTINF:2,\n1.ts\n"),
		want: &playlist.OriginMedia{TargetDuration: 2, MediaSequence: 4, Segments: []playlist.OriginSegment{
			{Seq: 4, URI: "1.ts", Duration: 2, ProgramDateTime: "2024-05-01T12:00:00Z", Tags: []string{"#EXT-X-X:1"}},
		}},
	},
	{
		name: "tags with no segment yet are the header's",
		in:   hdr(2, "#EXT-X-X:1\n#EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2024-05-01T12:00:00Z\"\n#EXT-X-Y\n#EXT-X-MAP:URI=\"i.mp4\"\n"),
		want: &playlist.OriginMedia{TargetDuration: 2,
			Header: []string{"#EXT-X-X:1", `#EXT-X-DATERANGE:ID="a",START-DATE="2024-05-01T12:00:00Z"`, "#EXT-X-Y"}},
	},
	{
		name: "LL-HLS: parts and LL tags dropped, full segments kept",
		in: "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:9\n" +
			"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24.0\n#EXT-X-PART-INF:PART-TARGET=0.33334\n" +
			"#EXT-X-MEDIA-SEQUENCE:266\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:36.106Z\n" +
			"#EXTINF:4.00008,\nfileSequence266.mp4\n" +
			"#EXT-X-PART:DURATION=0.33334,URI=\"filePart267.0.mp4\"\n#EXT-X-PART:DURATION=0.33334,URI=\"filePart267.1.mp4\",INDEPENDENT=YES\n" +
			"#EXTINF:4.00008,\nfileSequence267.mp4\n" +
			"#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:44.106Z\n#EXT-X-PART:DURATION=0.33334,URI=\"filePart268.0.mp4\"\n" +
			"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart268.1.mp4\"\n" +
			"#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php\",LAST-MSN=268,LAST-PART=0\n",
		want: &playlist.OriginMedia{TargetDuration: 4, MediaSequence: 266, Version: 9, Segments: []playlist.OriginSegment{
			{Seq: 266, URI: "fileSequence266.mp4", Duration: 4.00008, Init: initMP4, ProgramDateTime: "2019-02-14T02:13:36.106Z"},
			{Seq: 267, URI: "fileSequence267.mp4", Duration: 4.00008, Init: initMP4},
		}},
	},
	{
		name: "LL-HLS delta update: EXT-X-SKIP advances the sequence",
		in:   hdr(4, "#EXT-X-MEDIA-SEQUENCE:266\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:4,\n269.mp4\n"),
		want: &playlist.OriginMedia{TargetDuration: 4, MediaSequence: 269, Segments: []playlist.OriginSegment{
			{Seq: 269, URI: "269.mp4", Duration: 4},
		}},
	},
	{
		name: "first segment's tags with nothing written before them are the header's",
		in:   hdr(2, "#EXT-X-KEY:METHOD=NONE\n#EXT-X-X:1\n#EXT-X-GAP\n#EXT-X-Y\n#EXTINF:2,\n1.ts\n#EXT-X-Z\n#EXTINF:2,\n2.ts\n"),
		want: &playlist.OriginMedia{TargetDuration: 2, Header: []string{"#EXT-X-X:1"}, Segments: []playlist.OriginSegment{
			{Seq: 0, URI: "1.ts", Duration: 2, Tags: []string{"#EXT-X-GAP", "#EXT-X-Y"}},
			{Seq: 1, URI: "2.ts", Duration: 2, Tags: []string{"#EXT-X-Z"}},
		}},
	},
	{
		name: "bare WV tag is a comment",
		in:   "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#WV-CYPHER-VERSION\n",
		want: &playlist.OriginMedia{TargetDuration: 2},
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
	{name: "second #EXTM3U", in: hdr(2, "#EXTM3U\n"), wantErr: playlist.ErrMalformed},
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
	{name: "media sequence overflows with SKIP", in: hdr(2, "#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n"), wantErr: playlist.ErrMalformed},
	{name: "SKIP without count", in: hdr(2, "#EXT-X-SKIP:RECENTLY-REMOVED-DATERANGES=\"a\"\n"), wantErr: playlist.ErrMalformed},
	{name: "media sequence not a number", in: "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:x\n", wantErr: playlist.ErrMalformed},
	{name: "media sequence after a segment", in: hdr(2, "#EXTINF:2,\na.ts\n#EXT-X-MEDIA-SEQUENCE:3\n"), wantErr: playlist.ErrMalformed},
	{name: "two versions", in: hdr(2, "#EXT-X-VERSION:3\n#EXT-X-VERSION:4\n"), wantErr: playlist.ErrMalformed},
	{name: "version not a number", in: hdr(2, "#EXT-X-VERSION:three\n"), wantErr: playlist.ErrMalformed},
	{name: "unknown playlist type", in: hdr(2, "#EXT-X-PLAYLIST-TYPE:LIVE\n"), wantErr: playlist.ErrMalformed},
	{name: "byte range without offset first", in: hdr(2, "#EXTINF:2,\n#EXT-X-BYTERANGE:100\na.ts\n"), wantErr: playlist.ErrMalformed},
	{
		name:    "byte range without offset after another URI",
		in:      hdr(2, "#EXTINF:2,\n#EXT-X-BYTERANGE:100@0\na.ts\n#EXTINF:2,\n#EXT-X-BYTERANGE:100\nb.ts\n"),
		wantErr: playlist.ErrMalformed,
	},
	{
		name:    "byte range without offset after a whole resource",
		in:      hdr(2, "#EXTINF:2,\na.ts\n#EXTINF:2,\n#EXT-X-BYTERANGE:100\na.ts\n"),
		wantErr: playlist.ErrMalformed,
	},
	{name: "two byte ranges", in: hdr(2, "#EXT-X-BYTERANGE:1@0\n#EXTINF:2,\n#EXT-X-BYTERANGE:1@0\na.ts\n"), wantErr: playlist.ErrMalformed},
	{name: "negative byte range", in: hdr(2, "#EXTINF:2,\n#EXT-X-BYTERANGE:-1@0\na.ts\n"), wantErr: playlist.ErrMalformed},
	{name: "byte range overflows", in: hdr(2, "#EXTINF:2,\n#EXT-X-BYTERANGE:9223372036854775807@1\na.ts\n"), wantErr: playlist.ErrMalformed},
	{name: "MAP BYTERANGE without offset", in: hdr(2, "#EXT-X-MAP:URI=\"m.mp4\",BYTERANGE=\"720\"\n"), wantErr: playlist.ErrMalformed},
	{name: "MAP without URI", in: hdr(2, "#EXT-X-MAP:BYTERANGE=\"720@0\"\n"), wantErr: playlist.ErrMalformed},
	{name: "MAP URI not quoted", in: hdr(2, "#EXT-X-MAP:URI=init.mp4\n"), wantErr: playlist.ErrMalformed},
	{name: "key method unknown", in: hdr(2, "#EXT-X-KEY:METHOD=AES-256,URI=\"k\"\n"), wantErr: playlist.ErrMalformed},
	{name: "key method quoted", in: hdr(2, "#EXT-X-KEY:METHOD=\"AES-128\",URI=\"k\"\n"), wantErr: playlist.ErrMalformed},
	{name: "key without method", in: hdr(2, "#EXT-X-KEY:URI=\"k\"\n"), wantErr: playlist.ErrMalformed},
	{name: "AES-128 key without URI", in: hdr(2, "#EXT-X-KEY:METHOD=AES-128\n"), wantErr: playlist.ErrMalformed},
	{name: "METHOD=NONE with URI", in: hdr(2, "#EXT-X-KEY:METHOD=NONE,URI=\"k\"\n"), wantErr: playlist.ErrMalformed},
	{name: "IV without 0x", in: hdr(2, "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0123\n"), wantErr: playlist.ErrMalformed},
	{name: "IV too long", in: hdr(2, "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x"+strings.Repeat("0", 33)+"\n"), wantErr: playlist.ErrMalformed},
	{name: "key attribute twice", in: hdr(2, "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",URI=\"j\"\n"), wantErr: playlist.ErrMalformed},
	{name: "key unterminated quote", in: hdr(2, "#EXT-X-KEY:METHOD=AES-128,URI=\"k\n"), wantErr: playlist.ErrMalformed},
	{name: "key trailing comma", in: hdr(2, "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",\n"), wantErr: playlist.ErrMalformed},
	{
		name: "keys of two formats for one segment",
		in: hdr(2, "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://1\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n",
			"#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:x\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"\n#EXTINF:2,\na.ts\n"),
		wantErr: playlist.ErrMalformed,
	},
	{name: "two PDTs for one segment", in: hdr(2, "#EXT-X-PROGRAM-DATE-TIME:a\n#EXT-X-PROGRAM-DATE-TIME:b\n"), wantErr: playlist.ErrMalformed},
	{name: "empty PDT", in: hdr(2, "#EXT-X-PROGRAM-DATE-TIME:\n"), wantErr: playlist.ErrMalformed},
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
				Version:               max(tc.w.Version, playlist.MinVersion(tc.w)),
				PlaylistType:          tc.w.PlaylistType,
				Header:                tc.w.Header,
				Trailer:               tc.w.Trailer,
			}
			inits := map[playlist.InitRef]*playlist.Init{}
			for _, s := range tc.w.Segments {
				o := playlist.OriginSegment{
					Seq: s.Seq, URI: s.Name, Duration: s.Duration, Discontinuity: s.Discontinuity,
					Title: s.Title, Key: s.Key, ProgramDateTime: s.ProgramDateTime, Tags: s.Tags,
				}
				if s.Init != nil {
					if inits[*s.Init] == nil {
						inits[*s.Init] = &playlist.Init{URI: s.Init.Name}
					}
					o.Init = inits[*s.Init]
				}
				want.Segments = append(want.Segments, o)
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
		require.Contains(t, []string{"", "EVENT", "VOD"}, m.PlaylistType)
		for _, l := range append(append([]string{}, m.Header...), m.Trailer...) {
			requireVerbatimTag(t, l)
		}
		for i, s := range m.Segments {
			require.Equal(t, m.MediaSequence+uint64(i), s.Seq, "segment %d", i)
			require.NotEmpty(t, s.URI)
			require.False(t, s.Duration < 0 || s.Duration > 3600 || s.Duration != s.Duration, "duration %v", s.Duration)
			if s.Range != nil {
				require.True(t, s.Range.Length >= 0 && s.Range.Offset >= 0, "range %+v", *s.Range)
			}
			if s.Key != nil {
				require.Contains(t, []string{"AES-128", "SAMPLE-AES"}, s.Key.Method)
				require.NotEmpty(t, s.Key.URI)
			}
			if s.Init != nil {
				require.NotEmpty(t, s.Init.URI)
			}
			for _, l := range s.Tags {
				requireVerbatimTag(t, l)
			}
		}
	})
}

// requireVerbatimTag: a kept line is a trimmed tag of ours to pass on, never one we model.
func requireVerbatimTag(t *testing.T, l string) {
	t.Helper()
	require.True(t, strings.HasPrefix(l, "#EXT"), "%q", l)
	require.Equal(t, strings.TrimSpace(l), l)
	require.NotContains(t, l, "\n")
	for _, p := range []string{"#EXTINF:", "#EXT-X-KEY:", "#EXT-X-MAP:", "#EXT-X-BYTERANGE:", "#EXT-X-RAWFLOW-", "#EXT-X-PART:", "#EXT-X-MEDIA-SEQUENCE:"} {
		require.False(t, strings.HasPrefix(l, p), "%q", l)
	}
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
