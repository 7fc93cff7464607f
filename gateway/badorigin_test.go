package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/hlstest"
	"github.com/rawflow/rawflow/playlist"
)

// TestIngestBadOriginPlaylists: whatever a misbehaving origin sends, a poll fails with an
// error that says what was wrong, and the window already listed is kept as it was.
func TestIngestBadOriginPlaylists(t *testing.T) {
	manySegments := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + strings.Repeat("#EXTINF:2,\ns.ts\n", playlist.MaxSegments+1)
	cases := []struct {
		name, body string
		status     int
		want       string // in the error
	}{
		{"html page", "<html><body>Not here</body></html>", 200, "malformed"},
		{"empty", "", 200, "malformed"},
		{"binary garbage", "\x47\x40\x00\x10" + strings.Repeat("\xff", 500), 200, "malformed"},
		{"oversized", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + strings.Repeat("#", playlist.MaxPlaylistBytes), 200, "size limit"},
		{"too many segments", manySegments, 200, "more than"},
		{"no target duration", "#EXTM3U\n#EXTINF:2,\na.ts\n", 200, "TARGETDURATION"},
		{"uri without extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts\n", 200, "malformed"},
		{"server error", "oops", 500, "500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &hlstest.FakeLive{}
			o.Set(0, 3, 0)
			s, _ := newTestServer(t, o)
			require.NoError(t, poll(t, s))
			before := proxiesForm(media(t, s).win)

			o.Update(func(o *hlstest.FakeLive) {
				o.Playlist = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(tc.status)
					fmt.Fprint(w, tc.body)
				})
			})
			err := poll(t, s)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, before, proxiesForm(media(t, s).win), "previous window kept")
		})
	}
}
