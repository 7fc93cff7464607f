package httpx

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

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

func TestReadAll(t *testing.T) {
	body := strings.Repeat("x", 1000)
	for name, tc := range map[string]struct {
		size, limit int64
		want        int
	}{
		"size known":         {1000, 5000, 1000},
		"size unknown":       {-1, 5000, 1000},
		"longer than said":   {10, 5000, 1000},
		"shorter than said":  {4000, 5000, 1000},
		"over the limit":     {-1, 100, 101},
		"said over limit":    {1000, 100, 101},
		"exactly the limit":  {1000, 1000, 1000},
		"said empty":         {0, 10, 11},
		"size beyond limit+": {5000, 4000, 1000},
	} {
		b, err := ReadAll(strings.NewReader(body), tc.size, tc.limit)
		require.NoError(t, err, name)
		assert.Len(t, b, tc.want, name)
		assert.Equal(t, body[:tc.want], string(b), name)
	}
	_, err := ReadAll(iotest.ErrReader(io.ErrUnexpectedEOF), 10, 100)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// BenchmarkReadAll reads a 1 MB body with its Content-Length known, beside io.ReadAll (the
// baseline, in the same run): compare B/op.
func BenchmarkReadAll(b *testing.B) {
	body := bytes.Repeat([]byte{7}, 1<<20)
	b.Run("baseline-io.ReadAll", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_, _ = io.ReadAll(io.LimitReader(bytes.NewReader(body), 32<<20))
		}
	})
	b.Run("sized", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_, _ = ReadAll(bytes.NewReader(body), int64(len(body)), 32<<20)
		}
	})
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"1-ab.ts": "video/mp2t", "init-ab.mp4": "video/mp4", "2-ab.m4s": "video/mp4", "3-ab.aac": "audio/aac",
		"4-ab.m4a": "audio/mp4", "5-ab.vtt": "text/vtt", "key-ab.key": "application/octet-stream", "6-ab.xyz": "application/octet-stream",
	} {
		assert.Equal(t, []string{want}, ContentType(name), name)
	}
}

// closeRecorder is a response body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (b *closeRecorder) Close() error { b.closed = true; return nil }

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		body   string
		length int64 // Content-Length; -1: unknown
		want   string
		err    error // wanted, by errors.Is; nil: none
		status int   // a *StatusError's code wanted; 0: none
	}{
		{name: "within the limit", code: 200, body: "hello", length: 5, want: "hello"},
		{name: "a body over the limit", code: 200, body: "hello!", length: -1, err: ErrTooLarge},
		{name: "a Content-Length over the limit", code: 200, body: "hi", length: 1 << 40, err: ErrTooLarge},
		{name: "not 2xx", code: 404, body: "nope", length: 4, status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &closeRecorder{Reader: strings.NewReader(tc.body)}
			b, err := ReadBody(&http.Response{StatusCode: tc.code, Status: http.StatusText(tc.code), Body: body, ContentLength: tc.length}, 5)
			assert.True(t, body.closed, "ReadBody closes the body")
			switch {
			case tc.err != nil:
				require.ErrorIs(t, err, tc.err)
			case tc.status != 0:
				var se *StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.status, se.Code)
			default:
				require.NoError(t, err)
				assert.Equal(t, tc.want, string(b))
			}
		})
	}
}
