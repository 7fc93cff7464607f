package peerassist

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
	"github.com/rawflow/rawflow/swarm"
)

// TestUploadLimit: 320 KiB at 32 KiB/s take about ten (bubble) seconds; unlimited, none.
func TestUploadLimit(t *testing.T) {
	data := make([]byte, 320<<10)
	for _, tc := range []struct {
		limit int64
		want  time.Duration
	}{{32 << 10, 9 * time.Second}, {0, 0}} {
		synctest.Test(t, func(t *testing.T) {
			p, err := New(Config{GatewayURL: "http://127.0.0.1:1", AdvertiseAddr: ":1", UploadLimit: tc.limit})
			require.NoError(t, err)
			seg := &segment{digest: playlist.Sum(data), channel: "tv", data: data}
			p.cache.add(seg)
			p.member("tv").joined(swarm.Hello{PeerID: strings.Repeat("a", 32), SwarmKeys: swarm.ChannelKeys(fakePeerKey, "tv", time.Now()),
				TimeMS: time.Now().UnixMilli()}, time.Now())
			h := p.NeighbourHandler()
			start := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, asNeighbour(httptest.NewRequest(http.MethodGet, swarm.NeighbourSegmentPath+seg.digest.String(), nil)))
			elapsed := time.Since(start)
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, data, rec.Body.Bytes())
			assert.GreaterOrEqual(t, elapsed, tc.want)
			assert.Less(t, elapsed, tc.want+2*time.Second)
			assert.Equal(t, int64(len(data)), p.Status().Channels["tv"].BytesUploaded)
		})
	}
}
