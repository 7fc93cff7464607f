package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `rawflow: peer-assisted live HLS delivery.

Usage:
  rawflow gateway --listen :8080 --channel NAME=URL [--channel …] [--redis URL]
  rawflow peer --gateway URL [--listen 127.0.0.1:8081] [--peer-listen :8082] [--group NAME]
  rawflow demo [--listen :8080] [--peers 2]
  rawflow swarm [--gateway URL --channel NAME] [--viewers 10] [--duration 1m] [--json]
  rawflow token --sign-key KEY --channel NAME [--ttl 1h]
  rawflow version

Every flag can also be set with RAWFLOW_<FLAG> (upper case, dashes as underscores).
Run "rawflow COMMAND --help" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "rawflow:", err)
		os.Exit(2)
	}
}

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "gateway":
		return runGateway(ctx, rest, stderr)
	case "peer":
		return runPeer(ctx, rest, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "swarm":
		return runSwarm(ctx, rest, stdout, stderr)
	case "token":
		return runToken(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
