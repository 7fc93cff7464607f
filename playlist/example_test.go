package playlist_test

import (
	"fmt"

	"github.com/rawflow/rawflow/playlist"
)

func Example() {
	origin := []byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:17\n" +
		"#EXTINF:2.000000,\nseg_00017.ts\n")
	m, err := playlist.ParseOrigin(origin)
	if err != nil {
		panic(err)
	}
	s := m.Segments[0]
	fmt.Println(s.Seq, s.URI, s.Duration)

	body := []byte("the segment's bytes, as fetched from s.URI")
	d := playlist.Sum(body)
	w := playlist.Window{TargetDuration: m.TargetDuration, MediaSequence: s.Seq, Segments: []playlist.Segment{{
		Seq: s.Seq, Name: playlist.SegmentName(s.Seq, d, ".ts"), Duration: s.Duration, Digest: d, Size: int64(len(body)),
	}}}
	fmt.Print(string(playlist.Render(w, playlist.ForProxies)))
	// Output:
	// 17 seg_00017.ts 2
	// #EXTM3U
	// #EXT-X-VERSION:3
	// #EXT-X-TARGETDURATION:2
	// #EXT-X-MEDIA-SEQUENCE:17
	// #EXT-X-RAWFLOW-SEGMENT:DIGEST="6a4cf923bcfbda5db794972be8d4f9a7a4a498c721bed10ca13e65f9fee30625",SIZE=42
	// #EXTINF:2.000,
	// 17-6a4cf923bcfbda5d.ts
}
