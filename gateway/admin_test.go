package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// TestAdminToken: with AdminToken set, /metrics, the stats API and every route another
// package adds (the dashboard's pages and API) answer 401 without the token, and serve it
// given as a bearer token or as the password of HTTP Basic auth; the player, tracker and
// health routes stay open. Without AdminToken everything is open.
func TestAdminToken(t *testing.T) {
	const token = "s3cret-admin-token"
	newFront := func(adminToken string) *httptest.Server {
		s, err := New(Config{AdminToken: adminToken, Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/x.m3u8"}}}},
			swarm.NewMemory(swarm.Options{}))
		require.NoError(t, err)
		e := echo.New()
		s.Register(e)
		e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "dashboard") }) // as package web adds
		e.GET("/api/v1/overview", func(c echo.Context) error { return c.String(http.StatusOK, "{}") })
		front := httptest.NewServer(e)
		t.Cleanup(front.Close)
		return front
	}
	status := func(base, path string, auth func(*http.Request)) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}

	locked := newFront(token)
	for _, path := range []string{"/metrics", "/api/v1/stats", "/", "/api/v1/overview"} {
		assert.Equal(t, http.StatusUnauthorized, status(locked.URL, path, nil), path)
		assert.Equal(t, http.StatusUnauthorized, status(locked.URL, path, bearer("wrong")), path)
		assert.Equal(t, http.StatusUnauthorized, status(locked.URL, path, basic("admin", "wrong")), path)
		assert.Equal(t, http.StatusOK, status(locked.URL, path, bearer(token)), path)
		assert.Equal(t, http.StatusOK, status(locked.URL, path, basic("anyone", token)), path)
	}
	assert.Equal(t, http.StatusOK, status(locked.URL, "/healthz", nil))
	assert.Equal(t, http.StatusServiceUnavailable, status(locked.URL, "/readyz", nil), "open, not ready")
	assert.Equal(t, http.StatusServiceUnavailable, status(locked.URL, "/live/tv/index.m3u8", nil), "open, starting")
	assert.Equal(t, http.StatusBadRequest, status(locked.URL, "/api/v1/swarm/events", nil), "open, bad request")

	resp, err := http.Get(locked.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic", "browsers ask for the password")

	open := newFront("")
	for _, path := range []string{"/metrics", "/api/v1/stats", "/", "/api/v1/overview"} {
		assert.Equal(t, http.StatusOK, status(open.URL, path, nil), path)
	}
}

// TestErrorTextsPlain: an error that wraps one of echo's (a binder's "code=400,
// message=EOF, internal=EOF") is answered in plain words, on one line.
func TestErrorTextsPlain(t *testing.T) {
	s, err := New(Config{Channels: []ChannelConfig{{Name: "tv", Sources: []string{"http://127.0.0.1:1/x.m3u8"}}}}, swarm.NewMemory(swarm.Options{}))
	require.NoError(t, err)
	e := echo.New()
	s.Register(e)
	binder := echo.NewHTTPError(http.StatusBadRequest, "EOF").SetInternal(io.EOF)
	e.GET("/a", func(echo.Context) error { return fmt.Errorf("%w: body: %v", swarm.ErrBadRequest, binder) }) //nolint:errorlint // printed, as the old tracker did
	e.GET("/b", func(echo.Context) error { return fmt.Errorf("%w: body: %w", swarm.ErrBadRequest, binder) })
	e.GET("/c", func(echo.Context) error { return errors.Join(swarm.ErrBadRequest, errors.New("body: malformed JSON")) })
	e.GET("/d", func(echo.Context) error { return fmt.Errorf("decoding: %w", binder) })
	front := httptest.NewServer(e)
	defer front.Close()
	for _, path := range []string{"/a", "/b", "/c", "/d"} {
		resp, err := http.Get(front.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, path)
		for _, leak := range []string{"code=", "internal=", `"EOF"`, `\n`} {
			assert.NotContains(t, string(body), leak, path)
		}
		assert.Contains(t, string(body), "bad request", path)
	}
}
