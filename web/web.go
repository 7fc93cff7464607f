package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// static holds the pages and their assets; static/vendor/ (hls.js) is optional: the
// pattern names the directory, so the build works whether or not `make web` filled it.
//
//go:embed static
var static embed.FS

// hlsJSPath is where `make web` puts hls.js, inside static/.
const hlsJSPath = "vendor/hls.min.js"

// assetTypes lists the file types served under /ui/, with their Content-Type; any other
// file (the pages themselves included) is not an asset.
var assetTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
}

// Content security policies: the dashboard talks to its own origin only; the preview page
// may play a playlist from elsewhere (a proxy's ?src=), through hls.js (XHR, a blob: worker,
// MSE blob: media) or natively.
const (
	dashboardCSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
	previewCSP   = "default-src 'self'; img-src 'self' data:; connect-src 'self' http: https:; " +
		"media-src 'self' blob: http: https:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)

// file is one embedded file ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// HasHLSJS reports whether the build embedded hls.js (static/vendor/hls.min.js).
func HasHLSJS() bool {
	_, err := fs.Stat(static, "static/"+hlsJSPath)
	return err == nil
}

// pages are the embedded pages and assets, ready to serve.
type pages struct {
	index, preview file
	assets         map[string]file // by path under static/
}

func loadPages() pages {
	return pages{index: mustPage("index.html"), preview: mustPage("preview.html"), assets: loadAssets()}
}

// register adds the pages' routes to e:
//
//	GET /                   the dashboard (static/index.html)
//	GET /preview/{channel}  the preview page (static/preview.html); 404 for a malformed name
//	GET /ui/{file}          the assets under static/ (JS, CSS, images; hls.js under vendor/)
//
// HEAD works as GET; other methods get 405. Only files embedded under static/ are
// ever served, and only for clean paths: a path with dot segments, double or trailing
// slashes, or percent-encoding that is not the canonical one is a 404, like every path not
// listed. Pages are sent with Cache-Control no-cache (revalidated through their ETag),
// assets with max-age=300.
func (p pages) register(e *echo.Echo) {
	route := func(path string, h echo.HandlerFunc) {
		// Every method first, then GET and HEAD in their place: without a route of its
		// own, another method could get echo's 204 (OPTIONS) or a 404 (where e has a
		// catch-all, as the gateway's tracker group adds) instead of a 405.
		e.Any(path, getOnly)
		h = cleanPathOnly(h)
		e.GET(path, h)
		e.HEAD(path, h)
	}
	route("/", func(c echo.Context) error { return serve(c, p.index, "no-cache", dashboardCSP) })
	route("/preview/:channel", func(c echo.Context) error {
		if !swarm.ValidChannel(c.Param("channel")) {
			return notFound()
		}
		return serve(c, p.preview, "no-cache", previewCSP)
	})
	route("/ui/*", func(c echo.Context) error {
		f, ok := p.assets[c.Param("*")]
		if !ok {
			return notFound()
		}
		return serve(c, f, "max-age=300", "")
	})
}

// cleanPathOnly answers 404 for a path that is not clean or whose percent-encoding is not
// the canonical one (then echo routes on the raw path, and %2e%2e or %2f could reach h).
func cleanPathOnly(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Request().URL
		if u.RawPath != "" || path.Clean(u.Path) != u.Path {
			return notFound()
		}
		return h(c)
	}
}

// getOnly answers 405, naming the methods the pages answer.
func getOnly(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderAllow, "GET, HEAD")
	return echo.NewHTTPError(http.StatusMethodNotAllowed)
}

// notFound is a fresh 404 (echo.ErrNotFound is shared: error handlers must not touch it).
func notFound() error { return echo.NewHTTPError(http.StatusNotFound) }

// serve answers with f; http.ServeContent handles HEAD, If-None-Match and ranges.
func serve(c echo.Context, f file, cacheControl, csp string) error {
	h := c.Response().Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "same-origin")
	}
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(f.body))
	return nil
}

// mustPage reads an HTML page from static/; it is embedded, so a failure is a build bug.
func mustPage(name string) file {
	body, err := fs.ReadFile(static, "static/"+name)
	if err != nil {
		panic("web: page missing from the embedded files: " + err.Error())
	}
	return newFile(body, "text/html; charset=utf-8")
}

// loadAssets indexes every embedded file of an asset type by its path under static/.
func loadAssets() map[string]file {
	assets := map[string]file{}
	root, _ := fs.Sub(static, "static") // static is a valid directory name
	_ = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		ctype, ok := assetTypes[path.Ext(name)]
		if err != nil || d.IsDir() || !ok {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		assets[name] = newFile(body, ctype)
		return nil
	})
	return assets
}

func newFile(body []byte, contentType string) file {
	sum := sha256.Sum256(body)
	return file{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}
