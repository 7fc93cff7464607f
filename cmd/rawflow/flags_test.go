package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSizeAndRate(t *testing.T) {
	for in, want := range map[string]int64{"256MiB": 256 << 20, "64MB": 64e6, "1048576": 1 << 20, "2 GiB": 2 << 30} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]int64{"8Mbit": 1e6, "500kbit/s": 62500, "1MiB": 1 << 20, "1000/s": 1000} {
		got, err := parseRate(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "fast", "-5MiB", "12XB", "99999999999999999999GiB"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
	for _, bad := range []string{"0", "1bit", "lots"} {
		_, err := parseRate(bad)
		assert.Error(t, err, bad)
	}
}

// TestBadInvocations: every mistake is a clear error and a non-zero exit (run returns an error).
func TestBadInvocations(t *testing.T) {
	ctx := context.Background()
	cases := map[string][]string{
		"no command":        {},
		"unknown command":   {"serve"},
		"no channel":        {"gateway", "--listen", "127.0.0.1:0"},
		"channel no source": {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv"},
		"bad channel name":  {"gateway", "--listen", "127.0.0.1:0", "--channel", "t v=http://x/a.m3u8"},
		"bad source":        {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=ftp://x/a.m3u8"},
		"bad redis":         {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--redis", "mysql://x"},
		"unknown flag":      {"gateway", "--nope"},
		"stray argument":    {"peer", "--gateway", "http://127.0.0.1:1", "extra"},
		"no gateway":        {"peer"},
		"bad gateway":       {"peer", "--gateway", "localhost:8080"},
		"bad cache size":    {"peer", "--gateway", "http://127.0.0.1:1", "--cache-size", "huge"},
		"bad upload limit":  {"peer", "--gateway", "http://127.0.0.1:1", "--upload-limit", "fast"},
		"too many peers":    {"demo", "--peers", "500"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(ctx, args, &out, &errOut)
			require.Error(t, err)
			assert.False(t, errors.Is(err, flag.ErrHelp))
			assert.NotEmpty(t, err.Error())
		})
	}
}

func TestEnvironmentSetsFlags(t *testing.T) {
	t.Setenv("RAWFLOW_CHANNEL", "tv=ftp://nope")
	err := run(context.Background(), []string{"gateway", "--listen", "127.0.0.1:0"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ftp://nope", "the channel came from RAWFLOW_CHANNEL")
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, &out, &out))
	assert.Contains(t, out.String(), "rawflow")
	err := run(context.Background(), []string{"peer", "--help"}, &out, &out)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, out.String(), "-upload-limit")
}
