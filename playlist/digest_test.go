package playlist_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

const abcSHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

func TestDigest(t *testing.T) {
	d := playlist.Sum([]byte("abc"))
	assert.Equal(t, abcSHA256, d.String())

	got, err := playlist.ParseDigest(abcSHA256)
	require.NoError(t, err)
	assert.Equal(t, d, got)

	assert.Equal(t, "1234-ba7816bf8f01cfea.ts", playlist.SegmentName(1234, d, ".ts"))
	assert.Equal(t, "0-ba7816bf8f01cfea", playlist.SegmentName(0, d, ""))
}

func TestParseDigestErrors(t *testing.T) {
	for _, s := range []string{
		"",
		abcSHA256[:63],
		abcSHA256 + "0",
		strings.ToUpper(abcSHA256),
		"g" + abcSHA256[1:],
		" " + abcSHA256[1:],
	} {
		_, err := playlist.ParseDigest(s)
		assert.ErrorIs(t, err, playlist.ErrMalformed, "%q", s)
	}
}
