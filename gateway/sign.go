package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rawflow/rawflow/swarm"
)

// Signed viewer URLs. With a sign key, every /live/{channel}/… request carries
// ?token=EXPIRY-SIGNATURE, where EXPIRY is a Unix time in seconds and SIGNATURE the first 32
// hex digits of HMAC-SHA256(key, "CHANNEL:EXPIRY"). A token covers one channel — its
// playlists and all its segments — so the gateway writes it into the URIs of the playlists
// it serves and proxies pass it through. It is not part of a segment's identity: the swarm
// addresses segments by digest.

// Token errors, all answered 403.
var (
	errTokenMissing = errors.New("token missing")
	errTokenInvalid = errors.New("token invalid")
	errTokenExpired = errors.New("token expired")
)

// Token returns a token for channel valid until expires.
func Token(key []byte, channel string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "-" + signature(key, channel, exp)
}

func signature(key []byte, channel, exp string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(channel + ":" + exp))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// checkToken verifies token for channel at now.
func checkToken(key []byte, channel, token string, now time.Time) error {
	if token == "" {
		return errTokenMissing
	}
	exp, sig, ok := strings.Cut(token, "-")
	secs, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(sig), []byte(signature(key, channel, exp))) {
		return errTokenInvalid
	}
	if now.Unix() > secs {
		return errTokenExpired
	}
	return nil
}

// requireToken refuses /live requests without a valid token for their channel.
func (s *Server) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodOptions {
			return next(c)
		}
		err := checkToken(s.cfg.SignKey, c.Param("channel"), c.QueryParam(swarm.TokenQuery), s.cfg.Now())
		if err != nil {
			return echo.NewHTTPError(http.StatusForbidden, err.Error())
		}
		return next(c)
	}
}

// withToken appends the token to every URI of a playlist: URI lines and the URI="…"
// attributes of tags (renditions in a multivariant playlist).
func withToken(body []byte, token string) []byte {
	suffix := []byte("?" + swarm.TokenQuery + "=" + url.QueryEscape(token))
	var b bytes.Buffer
	b.Grow(len(body) + 64*bytes.Count(body, []byte("\n")))
	for line := range bytes.Lines(body) {
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(trimmed) > 0 && trimmed[0] != '#':
			b.Write(trimmed)
			b.Write(suffix)
			b.Write(line[len(trimmed):])
		case bytes.Contains(trimmed, []byte(`URI="`)):
			before, rest, _ := bytes.Cut(line, []byte(`URI="`))
			uri, after, _ := bytes.Cut(rest, []byte(`"`))
			b.Write(before)
			b.WriteString(`URI="`)
			b.Write(uri)
			b.Write(suffix)
			b.WriteString(`"`)
			b.Write(after)
		default:
			b.Write(line)
		}
	}
	return b.Bytes()
}
