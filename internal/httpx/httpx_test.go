package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeBytes(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 1000))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.Header().Set("Content-Type", "video/mp2t")
		ServeBytes(w, r, data)
	}))
	defer srv.Close()
	do := func(method string, hdr map[string]string) (*http.Response, []byte) {
		req, err := http.NewRequest(method, srv.URL, nil)
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	resp, b := do(http.MethodGet, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, data, b)
	assert.Equal(t, "10000", resp.Header.Get("Content-Length"))
	assert.Equal(t, "video/mp2t", resp.Header.Get("Content-Type"))
	assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))

	resp, b = do(http.MethodGet, map[string]string{"Range": "bytes=10-19"})
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "0123456789", string(b))
	resp, _ = do(http.MethodGet, map[string]string{"If-None-Match": `"x"`})
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	resp, b = do(http.MethodHead, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, b)
	assert.Equal(t, "10000", resp.Header.Get("Content-Length"))
}
