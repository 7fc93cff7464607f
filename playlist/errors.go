package playlist

import "errors"

// Limits on origin input. ParseGateway applies the same limits: a proxy reads the gateway's
// playlist from the network too.
const (
	MaxPlaylistBytes = 1 << 20 // larger input → ErrTooLarge
	MaxSegments      = 2000    // more segments → ErrTooManySegments
)

// maxDuration bounds EXTINF and EXT-X-TARGETDURATION values, in seconds.
const maxDuration = 3600

// Every error returned by ParseOrigin, ParseGateway and ParseDigest wraps exactly one of these.
var (
	// ErrTooLarge: the input is longer than MaxPlaylistBytes.
	ErrTooLarge = errors.New("playlist: too large")
	// ErrTooManySegments: the playlist lists more than MaxSegments segments.
	ErrTooManySegments = errors.New("playlist: too many segments")
	// ErrNotMedia: the input is a multivariant (master) playlist, not a media playlist.
	// Input that is not a playlist at all (no #EXTM3U first line) is ErrMalformed.
	ErrNotMedia = errors.New("playlist: not a media playlist")
	// ErrMalformed: anything else wrong with the input, including tags this package does not
	// support (see the package documentation).
	ErrMalformed = errors.New("playlist: malformed")
)
