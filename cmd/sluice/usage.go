package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sluiceproxy/sluice/host/metrics"
)

// subcommands lists what `sluice help` shows besides serving.
var subcommands = []struct{ usage, what string }{
	{"sluice [flags]", "serve with the config file (-config), until SIGINT or SIGTERM"},
	{"sluice check proxy.toml", "validate a config and load its filters; exit 0 or 1"},
	{"sluice filter inspect|run|test|new", "inspect, run or test a filter module, or write a new filter project (sluice filter: their flags)"},
	{"sluice version", "print the version, commit, Go and wazero versions (also -version)"},
	{"sluice help", "print this text (also -h)"},
}

// usage writes the usage text: the subcommands, then the flags of fs.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Sluice is a reverse proxy for HTTP and WebSocket traffic, programmed with WebAssembly filters.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	width := 0
	for _, c := range subcommands {
		width = max(width, len(c.usage))
	}
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.usage, c.what)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// printVersion writes the build's version line.
func printVersion(w io.Writer) {
	b := metrics.ReadBuildInfo()
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(w, "sluice %s (commit %s, %s, wazero %s)\n", b.Version, commit, b.Go, b.Wazero)
}

// durationsInMillis writes durations in JSON logs as milliseconds, a float
// under a key that says so ("duration" becomes "duration_ms"): slog's JSON
// handler would write integer nanoseconds, which log tools take for a
// plain number.
func durationsInMillis(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	key := a.Key
	if !strings.HasSuffix(key, "_ms") {
		key += "_ms"
	}
	return slog.Float64(key, float64(a.Value.Duration())/float64(time.Millisecond))
}
