package web

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// noChannels is a Stats without channels: enough for the pages.
type noChannels struct{}

func (noChannels) Channels() []string { return nil }
func (noChannels) Totals(context.Context, string) (swarm.ChannelStats, error) {
	return swarm.ChannelStats{}, ErrUnknownChannel
}
func (noChannels) Buckets(context.Context, string, time.Time, time.Time, time.Duration) ([]swarm.Bucket, error) {
	return nil, ErrUnknownChannel
}

// handler serves the dashboard's routes on an echo of their own, as Register adds them to
// any other.
func handler(t *testing.T) http.Handler {
	t.Helper()
	d, err := New(noChannels{}, Config{})
	require.NoError(t, err)
	return d.Handler()
}

func get(t *testing.T, h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	h := handler(t)
	cases := []struct {
		path, contentType, cache, body string
	}{
		{"/", "text/html; charset=utf-8", "no-cache", `data-chart="offload"`},
		{"/preview/tv", "text/html; charset=utf-8", "no-cache", `<video id="video"`},
		{"/preview/Channel_2-b", "text/html; charset=utf-8", "no-cache", `id="status"`},
		{"/preview/" + strings.Repeat("a", 64), "text/html; charset=utf-8", "no-cache", `id="status"`},
		{"/preview/tv?src=http%3A%2F%2F127.0.0.1%3A8081%2Flive%2Ftv%2Findex.m3u8", "text/html; charset=utf-8", "no-cache", `id="status"`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "max-age=300", "EventSource"},
		{"/ui/app.css", "text/css; charset=utf-8", "max-age=300", "--peer"},
		{"/ui/preview.js", "text/javascript; charset=utf-8", "max-age=300", "__preview"},
		{"/ui/icon.svg", "image/svg+xml", "max-age=300", "<svg"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, tc.path)
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, tc.contentType, rec.Header().Get("Content-Type"))
			assert.Equal(t, tc.cache, rec.Header().Get("Cache-Control"))
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			assert.Contains(t, rec.Body.String(), tc.body)
			if strings.HasPrefix(tc.contentType, "text/html") {
				assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'self'")
			}

			head := get(t, h, http.MethodHead, tc.path)
			assert.Equal(t, http.StatusOK, head.Code)
			assert.Empty(t, head.Body.String())

			again := get(t, h, http.MethodGet, tc.path, "If-None-Match", rec.Header().Get("ETag"))
			assert.Equal(t, http.StatusNotModified, again.Code, "revalidation by ETag")
		})
	}
}

func TestHLSJSVendoring(t *testing.T) {
	_, err := os.Stat("static/vendor/hls.min.js")
	onDisk := err == nil
	assert.Equal(t, onDisk, HasHLSJS(), "HasHLSJS says whether the build embedded static/vendor/hls.min.js")
	rec := get(t, handler(t), http.MethodGet, "/ui/vendor/hls.min.js")
	if !onDisk {
		assert.Equal(t, http.StatusNotFound, rec.Code)
		t.Skip("hls.js not vendored: run make web")
	}
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/javascript; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Equal(t, "max-age=300", rec.Header().Get("Cache-Control"))
}

func TestNotFound(t *testing.T) {
	h := handler(t)
	for _, path := range []string{
		"/index.html", "/static/index.html", "/favicon.ico", "/api/v1/stats", "/api/v1/channels/tv/series",
		"/preview/", "/preview", "/preview/tv/extra", "/preview/" + strings.Repeat("a", 65),
		"/preview/a.b", "/preview/t%20v", "/preview/%2e%2e", "/preview/..%2f..%2fweb.go",
		"/ui/", "/ui/vendor", "/ui/vendor/", "/ui/index.html", "/ui/preview.html",
		"/ui/missing.js", "/ui/app.js/", "/ui/%2e%2e/web.go", "/ui/..%2fweb.go", "/ui/..%2f..%2fgo.mod",
		"/ui/vendor/..%2f..%2fweb.go", "/ui/%2fetc%2fpasswd", "/ui/static/app.js",
	} {
		rec := get(t, h, http.MethodGet, path)
		assert.Equal(t, http.StatusNotFound, rec.Code, "GET %s", path)
		assert.NotContains(t, rec.Body.String(), "package web", "GET %s", path)
	}
}

// Unclean paths (dot segments, double slashes) and non-canonical percent-encodings are
// refused with a 404. (Under the http.ServeMux the pages had before echo, unclean paths
// were redirected to their clean form instead; echo does not clean paths, so the handlers
// refuse them.)
func TestUncleanPaths(t *testing.T) {
	h := handler(t)
	for _, path := range []string{
		"/ui/../web.go", "/ui/vendor/../../web.go", "/ui/./../go.mod", "/ui//etc/passwd", "/ui", "/ui/./app.js",
		"/ui//app.js", "/preview/../ui/app.js", "/preview/./tv", "//", "/./", "/%2e/", "/ui/%61pp.js", "/preview/%74v",
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rec := get(t, h, method, path)
			assert.Equal(t, http.StatusNotFound, rec.Code, "%s %s", method, path)
			assert.NotContains(t, rec.Body.String(), "package web", "%s %s", method, path)
			assert.NotContains(t, rec.Body.String(), "<html", "%s %s", method, path)
		}
	}
}

func TestMethods(t *testing.T) {
	h := handler(t)
	for _, path := range []string{"/", "/preview/tv", "/ui/app.js"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
			rec := get(t, h, method, path)
			assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, "%s %s", method, path)
		}
	}
}

// Nothing the pages load may come from another origin: no CDN, no web fonts. The one URL
// allowed is the SVG namespace, which names no resource to fetch.
func TestAssetsStayOnOrigin(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(\s*['"]?(https?:|//)`)
	checked := 0
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(name, "static/vendor/") {
			return err
		}
		body, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(body), `xmlns="http://www.w3.org/2000/svg"`, "")
		assert.Empty(t, external.FindAllString(text, -1), "%s refers to another origin", name)
		assert.NotContains(t, strings.ToLower(text), "//cdn", name)
		checked++
		return nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, checked, 6)
}

// Every path the pages name (src=, href=, '/ui/…' in scripts) is root-relative and served.
func TestPagesReferencesResolve(t *testing.T) {
	h := handler(t)
	ref := regexp.MustCompile(`(?:src|href)="([^"]*)"|'(/ui/[^']*)'`)
	for _, name := range []string{"index.html", "preview.html", "app.js", "preview.js"} {
		body, err := fs.ReadFile(static, "static/"+name)
		require.NoError(t, err)
		for _, m := range ref.FindAllStringSubmatch(string(body), -1) {
			target := m[1] + m[2]
			require.True(t, strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "//"), "%s: %q is not root-relative", name, target)
			if target == "/ui/vendor/hls.min.js" && !HasHLSJS() {
				continue
			}
			assert.Equal(t, http.StatusOK, get(t, h, http.MethodGet, target).Code, "%s refers to %s", name, target)
		}
	}
}
