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

// Handler serves the dashboard and the preview page:
//
//	GET /                   the dashboard (static/index.html)
//	GET /preview/{channel}  the preview page (static/preview.html); 404 for a malformed name
//	GET /ui/{file}          the assets under static/ (JS, CSS, images; hls.js under vendor/)
//
// HEAD works as GET; other methods get 405. Every other path is a 404: no directory
// listing, and only files embedded under static/ are ever served. Pages are sent with
// Cache-Control no-cache (revalidated through their ETag), assets with max-age=300.
func Handler() http.Handler {
	index, preview := mustPage("index.html"), mustPage("preview.html")
	assets := loadAssets()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, index, "no-cache", dashboardCSP)
	})
	mux.HandleFunc("GET /preview/{channel}", func(w http.ResponseWriter, r *http.Request) {
		if !swarm.ValidChannel(r.PathValue("channel")) {
			http.NotFound(w, r)
			return
		}
		serve(w, r, preview, "no-cache", previewCSP)
	})
	mux.HandleFunc("GET /ui/{file...}", func(w http.ResponseWriter, r *http.Request) {
		f, ok := assets[r.PathValue("file")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serve(w, r, f, "max-age=300", "")
	})
	return mux
}

// serve answers with f; http.ServeContent handles HEAD, If-None-Match and ranges.
func serve(w http.ResponseWriter, r *http.Request, f file, cacheControl, csp string) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "same-origin")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
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
