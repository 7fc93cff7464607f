package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

// GetRange takes a 206 of exactly the range, and cuts the range out of a 200 from an origin
// that ignores Range; anything else is ErrOriginStatus.
func TestGetRange(t *testing.T) {
	const object = "0123456789"
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string // "": ErrOriginStatus wanted
	}{
		{name: "206", handler: func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "x.ts", time.Time{}, bytes.NewReader([]byte(object)))
		}, want: "23456"},
		{name: "200 of the whole object", handler: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(object))
		}, want: "23456"},
		{name: "200 shorter than the range's end", handler: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(object[:4]))
		}},
		{name: "206 of another length", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write([]byte(object[2:5]))
		}},
		{name: "404", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			u, err := url.Parse(srv.URL + "/x.ts")
			require.NoError(t, err)
			b, err := NewOrigin(OriginConfig{Timeout: 5 * time.Second, Sources: []*url.URL{u}}).GetRange(t.Context(), u, &playlist.ByteRange{Offset: 2, Length: 5}, 1<<20)
			if tc.want == "" {
				require.ErrorIs(t, err, ErrOriginStatus)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
}
