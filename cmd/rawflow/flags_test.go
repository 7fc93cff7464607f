package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	stdlog "log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/gateway"
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
		"no command":         {},
		"unknown command":    {"serve"},
		"no channel":         {"gateway", "--listen", "127.0.0.1:0"},
		"channel no source":  {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv"},
		"bad channel name":   {"gateway", "--listen", "127.0.0.1:0", "--channel", "t v=http://x/a.m3u8"},
		"bad source":         {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=ftp://x/a.m3u8"},
		"udp source no port": {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=udp://@239.0.0.1"},
		"srt source no port": {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=srt://encoder.example"},
		"zero price":         {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--price-per-gb", "0"},
		"segment duration":   {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--segment-duration", "1500ms"},
		"bad redis":          {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--redis", "mysql://x"},
		"unknown flag":       {"gateway", "--nope"},
		"bad origin addrs":   {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--origin-addrs", "link-local"},
		"window zero":        {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--window", "0"},
		"window negative":    {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--window", "-5"},
		"stray argument":     {"peer", "--gateway", "http://127.0.0.1:1", "extra"},
		"no gateway":         {"peer"},
		"bad gateway":        {"peer", "--gateway", "localhost:8080"},
		"bad cache size":     {"peer", "--gateway", "http://127.0.0.1:1", "--cache-size", "huge"},
		"bad upload limit":   {"peer", "--gateway", "http://127.0.0.1:1", "--upload-limit", "fast"},
		"bad group":          {"peer", "--gateway", "http://127.0.0.1:1", "--group", "bad group!"},
		"bad origin":         {"peer", "--gateway", "http://127.0.0.1:1", "--allow-origin", "ftp://x"},
		"bad outage grace":   {"peer", "--gateway", "http://127.0.0.1:1", "--outage-grace", "-1s"},
		"too many peers":     {"demo", "--peers", "500"},
		"bad max uploads":    {"peer", "--gateway", "http://127.0.0.1:1", "--max-uploads", "0"},
		"bad seeders":        {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--seeders", "9"},
		"swarm no viewers":   {"swarm", "--viewers", "0", "--direct", "0"},
		"swarm bad viewers":  {"swarm", "--viewers", "-1"},
		"swarm peer host":    {"swarm", "--peer-host", "localhost"},
		"swarm short":        {"swarm", "--duration", "1s"},
		"swarm bad churn":    {"swarm", "--churn", "1.5"},
		"swarm bad variant":  {"swarm", "--variants", "0,x"},
		"swarm bad rtt":      {"swarm", "--gateway-rtt", "-1s"},
		"cert without key":   {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--tls-cert", "cert.pem"},
		"missing cert files": {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"},
		"cert and acme":      {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--acme-domain", "gw.example.com"},
		"acme for an IP":     {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--acme-domain", "127.0.0.1", "--acme-cache", "/tmp/x"},
		"acme plain dir":     {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--acme-domain", "gw.example.com", "--acme-cache", "/tmp/x", "--acme-dir", "http://acme.example/dir"},
		"acme email alone":   {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--acme-email", "ops@example.com"},
		"http-listen alone":  {"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=demo", "--http-listen", "127.0.0.1:0"},
		"gateway-ca on http": {"peer", "--gateway", "http://127.0.0.1:1", "--gateway-ca", "ca.pem"},
		"missing gateway-ca": {"peer", "--gateway", "https://127.0.0.1:1", "--gateway-ca", "/nonexistent/ca.pem"},
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

// TestLatencyFlags: --latency sets every channel's mode, --channel-latency one channel's,
// from the command line or RAWFLOW_LATENCY and RAWFLOW_CHANNEL_LATENCY.
func TestLatencyFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		wantTV    gateway.LatencyMode
		wantRadio gateway.LatencyMode
	}{
		{"default", nil, nil, gateway.LatencyNormal, gateway.LatencyNormal},
		{"all", []string{"--latency", "high"}, nil, gateway.LatencyHigh, gateway.LatencyHigh},
		{"one", []string{"--channel-latency", "radio=low"}, nil, gateway.LatencyNormal, gateway.LatencyLow},
		{"all and one", []string{"--latency=low", "--channel-latency=tv=high"}, nil, gateway.LatencyHigh, gateway.LatencyLow},
		{"both overridden", []string{"--latency", "low", "--channel-latency", "tv=normal", "--channel-latency", "radio=high"}, nil,
			gateway.LatencyNormal, gateway.LatencyHigh},
		{"environment", nil, map[string]string{"RAWFLOW_LATENCY": "low", "RAWFLOW_CHANNEL_LATENCY": "tv=high radio=normal"},
			gateway.LatencyHigh, gateway.LatencyNormal},
		{"flags over environment", []string{"--latency", "high"}, map[string]string{"RAWFLOW_LATENCY": "low"},
			gateway.LatencyHigh, gateway.LatencyHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := newFlagSet("gateway", "", io.Discard)
			l := addLatencyFlags(fs)
			require.NoError(t, parseFlags(fs, tc.args))
			chs := []gateway.ChannelConfig{{Name: "tv"}, {Name: "radio"}}
			require.NoError(t, l.apply(chs))
			assert.Equal(t, tc.wantTV, chs[0].Latency)
			assert.Equal(t, tc.wantRadio, chs[1].Latency)
		})
	}
}

// TestLatencyFlagErrors: a bad mode or an unknown channel is a clear error and a non-zero
// exit, before anything listens.
func TestLatencyFlagErrors(t *testing.T) {
	gw := func(extra ...string) []string {
		return append([]string{"gateway", "--listen", "127.0.0.1:0", "--channel", "tv=http://127.0.0.1:1/a.m3u8"}, extra...)
	}
	for name, tc := range map[string]struct {
		args []string
		env  string   // RAWFLOW_LATENCY, if set
		want []string // in the error
	}{
		"bad mode":             {gw("--latency", "fast"), "", []string{"--latency", `"fast"`, "low, normal or high"}},
		"upper case":           {gw("--latency", "HIGH"), "", []string{"--latency", `"HIGH"`}},
		"bad channel mode":     {gw("--channel-latency", "tv=slow"), "", []string{"--channel-latency", `"slow"`, "low, normal or high"}},
		"unknown channel":      {gw("--channel-latency", "radio=low"), "", []string{"--channel-latency", `no channel "radio"`}},
		"no mode":              {gw("--channel-latency", "tv"), "", []string{"--channel-latency", "NAME=MODE"}},
		"empty mode":           {gw("--channel-latency", "tv="), "", []string{"NAME=MODE"}},
		"channel twice":        {gw("--channel-latency", "tv=low", "--channel-latency", "tv=high"), "", []string{`"tv" given twice`}},
		"demo bad mode":        {[]string{"demo", "--latency", "fast"}, "", []string{"--latency", `"fast"`}},
		"environment bad mode": {gw(), "fast", []string{"--latency", `"fast"`}},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("RAWFLOW_LATENCY", tc.env)
			}
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestConfigFile: --config sets flags from YAML; the environment and the command line
// override it, a list replaces rather than extends, and mistakes are named.
func TestConfigFile(t *testing.T) {
	newSet := func() (*flag.FlagSet, *string, *int, *listFlag, *bool) {
		fs := newFlagSet("test", "", io.Discard)
		s := fs.String("listen", ":8080", "")
		n := fs.Int("window", 6, "")
		var l listFlag
		fs.Var(&l, "channel", "")
		b := fs.Bool("no-upload", false, "")
		return fs, s, n, &l, b
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	good := write("good.yaml", "listen: \":9000\"\nwindow: 9\nchannel:\n  - a=http://x/a.m3u8\n  - b=demo\nno-upload: true\n")

	fs, listen, window, channels, noUpload := newSet()
	require.NoError(t, parseFlags(fs, []string{"--config", good}))
	assert.Equal(t, ":9000", *listen)
	assert.Equal(t, 9, *window)
	assert.Equal(t, listFlag{"a=http://x/a.m3u8", "b=demo"}, *channels)
	assert.True(t, *noUpload)

	t.Setenv("RAWFLOW_WINDOW", "12")
	t.Setenv("RAWFLOW_CONFIG", good)
	fs, listen, window, channels, _ = newSet()
	require.NoError(t, parseFlags(fs, []string{"--channel", "c=demo", "--listen", ":1"}))
	assert.Equal(t, ":1", *listen, "the command line wins")
	assert.Equal(t, 12, *window, "the environment beats the file")
	assert.Equal(t, listFlag{"c=demo"}, *channels, "a list is replaced, not extended")
	os.Unsetenv("RAWFLOW_CONFIG")
	os.Unsetenv("RAWFLOW_WINDOW")

	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":     {"listne: \":1\"\n", `"listne" is not a flag`},
		"list for scalar": {"window: [1, 2]\n", "window: a list"},
		"bad value":       {"window: many\n", "window:"},
		"null":            {"listen:\n", "no value"},
		"not a mapping":   {"- a\n- b\n", "yaml"},
		"config in file":  {"config: other.yaml\n", `"config" is not a flag`},
		"too large":       {"listen: \"" + strings.Repeat("x", maxConfigBytes) + "\"\n", "larger than"},
	} {
		bad, _, _, _, _ := newSet()
		err := parseFlags(bad, []string{"--config", write(strings.ReplaceAll(name, " ", "_")+".yaml", tc.text)})
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), tc.want, name)
		}
	}
	fs, _, _, _, _ = newSet()
	assert.ErrorContains(t, parseFlags(fs, []string{"--config", filepath.Join(dir, "missing.yaml")}), "no such file")
}

// TestExampleConfigs: the example configs under deploy/ are accepted by the real commands
// (the command line overrides the addresses, and the context is already over, so each
// command starts and stops at once).
func TestExampleConfigs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range [][]string{
		{"gateway", "--config", "../../deploy/rawflow-gateway.yaml", "--listen", "127.0.0.1:0", "--channel", "tv=demo"},
		{"peer", "--config", "../../deploy/rawflow-peer.yaml", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0"},
	} {
		var stderr bytes.Buffer
		assert.NoError(t, run(ctx, tc, &bytes.Buffer{}, &stderr), "%v: %s", tc, stderr.String())
	}
}

// TestStdLogRouted: what the standard library logs (net/http's "Unsolicited response"
// with a neighbour's stray bytes) goes to the structured log, quoted and bounded.
func TestStdLogRouted(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger(&buf, "info")
	require.NoError(t, err)
	defer stdlog.SetOutput(os.Stderr)
	routeStdLog(l)
	stdlog.Printf("Unsolicited response received on idle HTTP channel starting with %s", "\x1b[31mEVIL\n"+strings.Repeat("x", 4096))
	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, "\n"), "one line: %q", out)
	assert.NotContains(t, out, "\x1b")
	assert.Contains(t, out, "level=WARN")
	assert.Less(t, len(out), 2*maxStdLogBytes)
}
