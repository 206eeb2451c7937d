// Command sluice is the Sluice reverse proxy.
//
//	sluice -config proxy.toml [-watch=true] [-log-format text|json] [-log-level info]
//	sluice check proxy.toml
//
// The first form serves until SIGINT or SIGTERM, then shuts down gracefully.
// It reloads the config and its filters without a restart on SIGHUP, on
// POST /reload to the admin listener and, unless -watch=false, when
// proxy.toml or a module it names changes on disk. The second form
// validates a config file, prints OK or every problem found, and exits 0
// or 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return check(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "proxy.toml", "path of the config file")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	watch := fs.Bool("watch", true, "reload when proxy.toml or a module it names changes")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice [-config proxy.toml] [-watch=true] [-log-format text|json] [-log-level info]")
		fmt.Fprintln(stderr, "       sluice check proxy.toml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "sluice:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *cfgPath, *watch, log); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// buildChains builds the filter chain of every route from the [[plugin]]
// tables, with a Loader of its own, for `sluice check`; the server builds
// every generation with one Loader (see serve and loaderBuilder). The
// returned Closer releases what the chains hold (compiled modules,
// instance pools) after the proxy has stopped. Relative module paths are
// resolved against dir, the config file's directory.
func buildChains(cfg *config.Config, dir string, log *slog.Logger) (map[string]filter.Chain, io.Closer, error) {
	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: log, BaseDir: dir})
	set, err := loader.Load(context.Background(), cfg)
	if err != nil {
		loader.Close()
		return nil, nil, err
	}
	return set.Chains(), closerFunc(func() error { return errors.Join(set.Close(), loader.Close()) }), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// check validates the config file named by args[0].
func check(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: sluice check proxy.toml")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(stderr, e)
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	// Load every filter module too, so a broken or missing module is
	// reported here rather than when the proxy starts.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, closer, err := buildChains(cfg, filepath.Dir(args[0]), log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	closer.Close()
	fmt.Fprintln(stdout, "OK")
	printBudgets(stdout, plugins.Budgets(cfg))
	return 0
}

// printBudgets prints the worst-case memory of the configured filters, one
// line per plugin and the total, so an operator can size the machine (or a
// container's memory limit) before a filter ever runs.
func printBudgets(w io.Writer, budgets []plugins.Budget) {
	if len(budgets) == 0 {
		return
	}
	var total uint64
	for _, b := range budgets {
		fmt.Fprintln(w, "memory:", b)
		total += b.Total()
	}
	fmt.Fprintf(w, "memory: filters hold at most %d bytes in the worst case\n", total)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad -log-format %q: want text or json", format)
}
