package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// newFlagSet returns a flag set that prints its errors and usage to stderr.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rawflow %s [flags]\n\n%s\n\nFlags (each also read from RAWFLOW_<FLAG>):\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags sets every flag from its RAWFLOW_<FLAG> environment variable, then parses
// args, which take precedence. A repeatable flag reads a whitespace-separated list.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "RAWFLOW_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok || err != nil {
			return
		}
		values := []string{v}
		if _, multi := f.Value.(*listFlag); multi {
			values = strings.Fields(v)
		}
		for _, one := range values {
			if e := fs.Set(f.Name, one); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

var sizeRe = regexp.MustCompile(`^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$`)

// parseSize reads sizes like 256MiB, 64MB, 1048576.
func parseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KB, KiB, MB, MiB, GB, GiB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m[2]]
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

var bitRateRe = regexp.MustCompile(`^(\d+)\s*(k|M|G)?bit(/s)?$`)

// parseRate reads a rate in bits (8Mbit, 500kbit, 1Gbit/s) or bytes (1MiB, 500KB, 1000000)
// per second and returns bytes per second.
func parseRate(s string) (int64, error) {
	if m := bitRateRe.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		mult := map[string]int64{"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m[2]]
		if err != nil || n > (1<<62)/mult || n*mult < 8 {
			return 0, fmt.Errorf("rate %q: out of range", s)
		}
		return n * mult / 8, nil
	}
	n, err := parseSize(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("rate %q: want bits (8Mbit) or bytes (1MiB) per second", s)
	}
	return n, nil
}

// newLogger returns a text logger at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// serve serves h on ln until ctx ends, then shuts down gracefully (bounded).
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return serveUntil(ctx, ln, h, nil)
}

// serveUntil is serve, and when kill is closed first, the server closes at once, cutting
// the connections it has (a crash, as far as its clients can tell).
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler, kill <-chan struct{}) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-kill:
		_ = srv.Close()
		<-errc
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
