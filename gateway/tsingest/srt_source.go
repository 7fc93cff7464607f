package tsingest

import (
	"context"
	"errors"
	"io"
	"net/url"
	"time"
)

func openSRT(ctx context.Context, u *url.URL, timeout time.Duration) (io.ReadCloser, error) {
	return nil, errors.New("srt sources: not implemented yet")
}
