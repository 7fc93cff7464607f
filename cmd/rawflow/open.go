package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
)

// browserCommand is the command that opens a URL in the default browser on goos, and its
// arguments before the URL.
func browserCommand(goos string) (name string, args []string) {
	switch goos {
	case "darwin":
		return "open", nil
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler"}
	default: // Linux and the BSDs
		return "xdg-open", nil
	}
}

// openBrowser opens url in the default browser where one can be found, saying what it did
// on w; it never fails: the URL is printed anyway. The command runs in the background, and
// is reaped when it ends.
func openBrowser(ctx context.Context, url string, w io.Writer) {
	name, args := browserCommand(runtime.GOOS)
	path, err := exec.LookPath(name)
	if err != nil {
		fmt.Fprintf(w, "--open: no %s found to open a browser; open %s yourself.\n", name, url)
		return
	}
	cmd := exec.CommandContext(context.WithoutCancel(ctx), path, append(args, url)...) //nolint:gosec // the URL is ours; the browser opener is the system's
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(w, "--open: %s: %v; open %s yourself.\n", name, err, url)
		return
	}
	fmt.Fprintf(w, "Opening the dashboard in your browser (%s).\n", name)
	go func() { _ = cmd.Wait() }()
}
