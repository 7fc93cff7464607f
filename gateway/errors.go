package gateway

import "errors"

// Errors the gateway classifies (see Server.errorHandler).
var (
	// ErrUnknownChannel: no channel (or rendition) of that name.
	ErrUnknownChannel = errors.New("unknown channel")
	// errOriginFetch: an on-demand origin fetch failed.
	errOriginFetch = errors.New("origin fetch failed")
)
