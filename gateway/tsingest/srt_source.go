package tsingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/rawflow/rawflow/gateway/tsingest/internal/srt"
)

// openSRT connects to an SRT source: as a caller (the default), or as a listener that
// waits for the encoder to call (mode=listener), until ctx ends.
func openSRT(ctx context.Context, u *url.URL, timeout time.Duration) (io.ReadCloser, error) {
	q := u.Query()
	cfg := srt.Config{StreamID: q.Get("streamid"), HandshakeTimeout: timeout, PeerIdleTimeout: timeout}
	if ms := q.Get("latency"); ms != "" {
		n, err := strconv.Atoi(ms)
		if err != nil || n < 0 || n > 60_000 {
			return nil, fmt.Errorf("srt source %q: latency %q: want 0-60000 ms", u.Redacted(), ms)
		}
		cfg.Latency = time.Duration(n) * time.Millisecond
	}
	switch mode := q.Get("mode"); mode {
	case "", "caller":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("srt source %q: a caller needs the listener's host", u.Redacted())
		}
		return srt.Dial(ctx, u.Host, cfg)
	case "listener":
		cfg.MaxConns = 1 // the one encoder: another caller is rejected, not accepted and left unread
		l, err := srt.Listen(u.Host, cfg)
		if err != nil {
			return nil, err
		}
		c, err := l.Accept(ctx)
		if err != nil {
			_ = l.Close()
			return nil, err
		}
		return &srtListened{Conn: c, l: l}, nil
	default:
		return nil, fmt.Errorf("srt source %q: mode %q: want caller or listener", u.Redacted(), mode)
	}
}

// srtListened is a connection a listener accepted; closing it closes the listener too.
type srtListened struct {
	*srt.Conn
	l *srt.Listener
}

func (s *srtListened) Close() error { return errors.Join(s.Conn.Close(), s.l.Close()) }
