package httpx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// ServeBytes answers r with an immutable object held in memory. A plain GET, the common
// case, gets the whole slice in one write; HEAD, Range and conditional requests go through
// http.ServeContent (which copies in 32 KB chunks: on 200 KB segments the one write serves
// 1.7× the requests per second, see README "Edge benchmark"). Headers the caller set
// (Content-Type, ETag, Cache-Control) are kept.
func ServeBytes(w http.ResponseWriter, r *http.Request, data []byte) {
	if r.Method != http.MethodGet || r.Header.Get("Range") != "" || r.Header.Get("If-None-Match") != "" ||
		r.Header.Get("If-Modified-Since") != "" || r.Header.Get("If-Range") != "" {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		return
	}
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// LiveCORS lets players on any origin fetch playlists and segments (the gateway's /live and
// a proxy's): Range, Authorization, conditional and CMCD request headers included, and the
// headers players read exposed. The preflight itself is answered by the middleware.
func LiveCORS() echo.MiddlewareFunc { return liveCORS(nil) }

// LiveCORSFor is LiveCORS for the origins allow accepts only: others get no CORS headers.
func LiveCORSFor(allow func(origin string) bool) echo.MiddlewareFunc {
	return liveCORS(func(o string) (bool, error) { return allow(o), nil })
}

func liveCORS(allow func(string) (bool, error)) echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:    []string{"*"},
		AllowOriginFunc: allow,
		AllowMethods:    []string{http.MethodGet, http.MethodHead, http.MethodOptions},
		AllowHeaders: []string{"Range", "Authorization", "If-None-Match", "If-Range",
			"CMCD-Request", "CMCD-Object", "CMCD-Session", "CMCD-Status"},
		ExposeHeaders: []string{"Content-Length", "Content-Range", "ETag", "Accept-Ranges"},
		MaxAge:        86400,
	})
}

// ReadAll reads r to its end, but never more than limit+1 bytes (so that a caller can tell
// a body over limit), into a buffer sized for size bytes when size (a Content-Length) is
// known and within limit: one allocation for a body of the announced length, where
// io.ReadAll grows its buffer step by step, allocating about twice the body in all.
func ReadAll(r io.Reader, size, limit int64) ([]byte, error) {
	lr := io.LimitReader(r, limit+1)
	if size < 0 || size > limit {
		return io.ReadAll(lr)
	}
	b := make([]byte, 0, size+1) // the extra byte reads EOF without growing
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than announced: grow as append does
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// ErrTooLarge reports a body that exceeded its size bound.
var ErrTooLarge = errors.New("body exceeds size limit")

// StatusError is a response whose status was not 2xx.
type StatusError struct {
	Code   int
	Status string // as the response gave it, e.g. "404 Not Found"
}

func (e *StatusError) Error() string { return "status " + e.Status }

// ReadBody reads a 2xx response's body, at most limit bytes (more is ErrTooLarge, as is a
// Content-Length over it), and closes it. Any other status is a *StatusError (the body is
// drained, a little of it, so that the connection can be reused).
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &StatusError{Code: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d > %d", ErrTooLarge, resp.ContentLength, limit)
	}
	b, err := ReadAll(resp.Body, resp.ContentLength, limit)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// Content-Type header values of the objects a live rendition serves; shared, never
// modified, so that setting one allocates nothing.
var (
	ctTS     = []string{"video/mp2t"}
	ctMP4    = []string{"video/mp4"}
	ctAudio  = []string{"audio/mp4"}
	ctAAC    = []string{"audio/aac"}
	ctMP3    = []string{"audio/mpeg"}
	ctVTT    = []string{"text/vtt"}
	ctOctets = []string{"application/octet-stream"}
)

// ContentType returns the Content-Type header value of a segment, init section or key,
// from its name's extension (the gateway keeps the origin's); keys and anything unknown
// are application/octet-stream. The slice is shared: never modify it.
func ContentType(name string) []string {
	switch path.Ext(name) {
	case ".ts":
		return ctTS
	case ".mp4", ".m4s", ".m4v", ".cmfv":
		return ctMP4
	case ".m4a", ".cmfa":
		return ctAudio
	case ".aac":
		return ctAAC
	case ".mp3":
		return ctMP3
	case ".vtt", ".webvtt":
		return ctVTT
	}
	return ctOctets
}
