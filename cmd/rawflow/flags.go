package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// newFlagSet returns a flag set that prints its errors and usage to stderr, with the
// --config flag every command has.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rawflow %s [flags]\n\n%s\n\nFlags (each also read from RAWFLOW_<FLAG>):\n", name, summary)
		fs.PrintDefaults()
	}
	fs.String("config", "", "YAML file of flag values: keys are flag names, a list for a repeatable flag (deploy/rawflow-*.yaml); the environment and the command line override it")
	return fs
}

// maxConfigBytes bounds a --config file.
const maxConfigBytes = 1 << 20

// parseFlags sets each flag from one source, the first that has it: the command line
// (args), its RAWFLOW_<FLAG> environment variable, the --config file. A repeatable flag
// reads a whitespace-separated list from the environment and a YAML list from the file.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		v, ok := os.LookupEnv(env)
		if !ok || set[f.Name] || err != nil {
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
		set[f.Name] = true
	})
	if err != nil {
		return err
	}
	if path := fs.Lookup("config").Value.String(); path != "" {
		return applyConfig(fs, path, set)
	}
	return nil
}

func envName(flag string) string {
	return "RAWFLOW_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyConfig sets the flags not in set from the YAML file at path: a mapping of flag
// names to scalars, or to lists of scalars for repeatable flags. Unknown names are errors.
func applyConfig(fs *flag.FlagSet, path string, set map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return fmt.Errorf("--config %s: larger than %d bytes", path, maxConfigBytes)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	names := make([]string, 0, len(doc))
	for name := range doc {
		names = append(names, name)
	}
	sort.Strings(names) // the first error is the same on every run
	for _, name := range names {
		fl := fs.Lookup(name)
		if fl == nil || name == "config" {
			return fmt.Errorf("--config %s: %q is not a flag of rawflow %s (see rawflow %[3]s --help)", path, name, fs.Name())
		}
		if set[name] {
			continue // the command line or the environment said it
		}
		values, err := configValues(doc[name], fl)
		if err != nil {
			return fmt.Errorf("--config %s: %s: %w", path, name, err)
		}
		for _, v := range values {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("--config %s: %s: %w", path, name, err)
			}
		}
	}
	return nil
}

// configValues returns the flag values one YAML value stands for.
func configValues(v any, fl *flag.Flag) ([]string, error) {
	_, multi := fl.Value.(*listFlag)
	if list, ok := v.([]any); ok {
		if !multi {
			return nil, errors.New("a list, for a flag that takes one value")
		}
		out := make([]string, 0, len(list))
		for _, one := range list {
			s, err := configScalar(one)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := configScalar(v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func configScalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v), nil
	case nil:
		return "", errors.New("no value")
	default:
		return "", fmt.Errorf("want a string, number or boolean, not %T", v)
	}
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

// maxStdLogBytes bounds one line of the standard library's log routed into slog.
const maxStdLogBytes = 512

// routeStdLog sends what the standard library logs (net/http's servers, and its transports:
// "Unsolicited response received on idle HTTP channel" with a neighbour's stray bytes) to
// l, as a warning, bounded and quoted, instead of raw to stderr outside the structured log.
func routeStdLog(l *slog.Logger) {
	stdlog.SetFlags(0)
	stdlog.SetOutput(stdLogWriter{l})
}

type stdLogWriter struct{ l *slog.Logger }

func (w stdLogWriter) Write(b []byte) (int, error) {
	n := len(b)
	msg := strings.TrimRight(string(b[:min(n, maxStdLogBytes)]), "\n")
	if n > maxStdLogBytes {
		msg += "…"
	}
	w.l.Warn("net/http", "msg", msg) // the handler quotes it
	return n, nil
}
