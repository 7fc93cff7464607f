package playlist

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateMultivariant = flag.Bool("update-multivariant", false, "rewrite testdata/*.rewritten.m3u8")

func TestMultivariantRewriteGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "abr.origin.m3u8"))
	require.NoError(t, err)
	m, err := ParseMultivariant(in)
	require.NoError(t, err)
	assert.Equal(t, []string{"audio/en.m3u8", "subs/en.m3u8", "360p/index.m3u8", "http://cdn.example/180p/index.m3u8?sig=abc", "360p/iframes.m3u8"}, m.URIs,
		"distinct renditions in order of first appearance")
	names := make([]string, len(m.URIs))
	for i := range names {
		names[i] = "r" + string(rune('0'+i)) + "/index.m3u8"
	}
	got := m.Rewrite(names)
	golden := filepath.Join("testdata", "abr.rewritten.m3u8")
	if *updateMultivariant {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	for _, keep := range []string{"#EXT-X-FUTURE-TAG:KEEP=ME", "#EXT-X-SESSION-DATA", `NAME="Main",DEFAULT=NO`, "AVERAGE-BANDWIDTH=900000"} {
		assert.Contains(t, string(got), keep, "tags the gateway does not rewrite survive")
	}
	assert.Contains(t, string(got), `#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI="r4/index.m3u8"`)
	assert.NotContains(t, string(got), "cdn.example")
	assert.Equal(t, 2, strings.Count(string(got), "\nr2/index.m3u8\n"), "a URI named twice is one rendition")
}

func TestParseMultivariantErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":               "",
		"not a playlist":      "hello\n",
		"media playlist":      "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n",
		"no variant":          "#EXTM3U\n#EXT-X-VERSION:3\n",
		"variant without uri": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
		"uri without variant": "#EXTM3U\nlost.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n",
		"too many":            "#EXTM3U\n" + strings.Repeat("#EXT-X-STREAM-INF:BANDWIDTH=1\nx\n", 1) + manyVariants(MaxRenditions+1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseMultivariant([]byte(in))
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
	_, err := ParseMultivariant(make([]byte, MaxPlaylistBytes+1))
	assert.ErrorIs(t, err, ErrTooLarge)
}

func manyVariants(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("#EXT-X-STREAM-INF:BANDWIDTH=1\nv" + strings.Repeat("x", i) + ".m3u8\n")
	}
	return b.String()
}

func FuzzParseMultivariant(f *testing.F) {
	seed, _ := os.ReadFile(filepath.Join("testdata", "abr.origin.m3u8"))
	f.Add(seed)
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMultivariant(data)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(m.URIs), MaxRenditions)
		names := make([]string, len(m.URIs))
		for i := range names {
			names[i] = "r/index.m3u8"
		}
		_ = m.Rewrite(names)
	})
}
