//go:build e2e

package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGatewayReloadsChannels: SIGHUP sets the channels anew from --config: one added (on
// the built-in source), a bad file refused with the old set kept, one removed.
func TestGatewayReloadsChannels(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	origin, err := newDemoOrigin()
	require.NoError(t, err)
	odone := make(chan struct{})
	go func() { _ = origin.run(ctx); close(odone) }()
	hup := make(chan os.Signal, 1)
	saved := notifyReload
	notifyReload = func() (<-chan os.Signal, func()) { return hup, func() {} }
	t.Cleanup(func() { notifyReload = saved })

	conf := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(text string) { require.NoError(t, os.WriteFile(conf, []byte(text), 0o600)) }
	write("channel:\n  - a=" + origin.url + "\n")
	addr := faultAddrs(t, 1)[0]
	var stderr procOutput
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"gateway", "--config", conf, "--listen", addr}, io.Discard, &stderr) }()
	defer func() { cancel(); assert.NoError(t, <-done); <-odone }()
	base := "http://" + addr
	waitHTTP(t, base+"/readyz", 20*time.Second)
	status := func(ch string) int {
		resp, err := http.Get(base + "/live/" + ch + "/index.m3u8")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// until waits, bounded, for what a running gateway shows.
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "%s; the gateway said:\n%s", what, stderr.tail(2000))
		}
	}

	write("channel:\n  - a=" + origin.url + "\n  - b=demo\n")
	hup <- syscall.SIGHUP
	until("channel b is served after the reload", func() bool { return status("b") == http.StatusOK })
	assert.Equal(t, http.StatusOK, status("a"))

	write("channel:\n  - bad name=demo\n")
	hup <- syscall.SIGHUP
	until("the bad set is refused", func() bool { return strings.Contains(stderr.tail(4000), "channels not reloaded") })
	assert.Equal(t, http.StatusOK, status("a"), "the old set goes on")
	assert.Equal(t, http.StatusOK, status("b"))

	write("channel:\n  - b=demo\n")
	hup <- syscall.SIGHUP
	until("channel a is gone", func() bool { return status("a") == http.StatusNotFound })
	assert.Equal(t, http.StatusOK, status("b"))
	assert.Contains(t, stderr.tail(4000), `removed=[a]`)
}
