// Command sluice-bench measures Sluice side by side with nginx on one machine:
// HTTP small and 1 MiB exchanges (wrk), WebSocket echo latency and throughput,
// memory per idle WebSocket, and the filter microbenchmarks. It installs the
// tools it needs, builds Sluice and the example filters, starts a backend,
// each proxy and the load generators on 127.0.0.1, and writes BENCHMARKS.md
// with gnuplot charts in docs/bench/.
//
// Usage:
//
//	go run ./cmd/sluice-bench [-quick] [-only http,bulk,ws,idle,micro]
//	go run ./cmd/sluice-bench backend -listen 127.0.0.1:9000
//
// The proxy under test runs on CPU 0; the harness, wrk and the backend on
// CPU 1, so the proxy's throughput is not eaten by its own load.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// The CPUs the proxy and everything else run on (when the machine has two).
const (
	proxyCPU = 0
	loadCPU  = 1
)

// pinning is false on a one-CPU machine, where taskset would only serialise.
var pinning = runtime.NumCPU() >= 2

// sluiceLogArgs are the flags that set Sluice's logging to the level nginx
// runs at (access log off, errors on); set by probeSluiceFlags.
var sluiceLogArgs []string

func main() {
	if len(os.Args) > 1 && os.Args[1] == "backend" {
		if err := runBackend(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	quick := flag.Bool("quick", false, "short run (under two minutes) for CI and checks")
	only := flag.String("only", "http,bulk,ws,idle,micro", "comma-separated scenarios to run")
	out := flag.String("out", "", "directory for BENCHMARKS.md and docs/bench/ (default: the repository root; bin/bench-quick with -quick)")
	idle := flag.Int("idle", 0, "idle WebSocket connections to hold (default 10000, 1000 with -quick)")
	keep := flag.Bool("keep", false, "keep the temp dir with configs and logs")
	profile := flag.String("profile", "auto", "profile the Sluice targets after the measured rounds: on, off, or auto (on unless -quick)")
	flag.Parse()

	started := time.Now()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if *out == "" {
		// A quick run is a smoke test: keep it out of the committed results.
		*out = root
		if *quick {
			*out = filepath.Join(root, "bin", "bench-quick")
		}
	}
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	if *idle > 0 {
		p.IdleConns = *idle
	}
	scen := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		scen[strings.TrimSpace(s)] = true
	}

	logf := func(format string, args ...any) {
		fmt.Printf("[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	nofile, err := raiseNofile()
	if err != nil {
		return err
	}
	if err := installTools(root, logf); err != nil {
		return err
	}
	l := &lab{root: root, procs: newProcs(), nofile: nofile, wasmOK: map[string]error{}}
	l.sluiceOK = buildSluice(root, logf)
	buildFilters(root, l, logf)
	if l.sluiceOK == nil {
		sluiceLogArgs = probeSluiceFlags(filepath.Join(root, "bin", "sluice"))
		logf("sluice logging flags: %q", sluiceLogArgs)
	}

	l.dir, err = os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return fmt.Errorf("sluice-bench: %w", err)
	}
	if !*keep {
		defer os.RemoveAll(l.dir)
	} else {
		defer fmt.Println("configs and logs kept in", l.dir)
	}

	// From here on every child is ours to stop, whatever happens.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	defer l.procs.stopAll()
	defer func() {
		if r := recover(); r != nil {
			l.procs.stopAll()
			panic(r)
		}
	}()
	go func() {
		<-ctx.Done()
		l.procs.stopAll()
	}()

	if err := pinSelf(logf); err != nil {
		return err
	}
	if err := startBackend(ctx, l); err != nil {
		return err
	}
	logf("backend on %s (pid pinned to CPU %d)", l.backend, loadCPU)

	b := &bench{lab: l, plan: p, res: &results{}, logf: logf, skipped: map[string]string{}}
	b.profile = *profile == "on" || (*profile == "auto" && !p.Quick)
	rep := &report{plan: p, res: b.res, skipped: b.skipped, command: benchCommand(*quick)}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"http", b.scenarioHTTP}, {"bulk", b.scenarioBulk}, {"ws", b.scenarioWS}, {"idle", b.scenarioIdle},
	}
	for _, s := range steps {
		if !scen[s.name] {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return err
		}
	}
	if scen["micro"] {
		rep.micro = runMicro(ctx, root, p, logf)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	rep.profiles = b.profiles
	rep.idleNote = b.idleNote
	b.sampleLoad()
	rep.loads = b.loads
	l.procs.stopAll()
	rep.machine = describeMachine()
	rep.elapsed = time.Since(started)
	if a, err := os.ReadFile(filepath.Join(root, "docs", "bench", "analysis.md")); err == nil {
		rep.analysis = string(a)
	}
	if err := rep.write(*out, logf); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(b.res, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "docs", "bench", "results.json"), raw, 0o644); err != nil {
		return fmt.Errorf("sluice-bench: %w", err)
	}
	logf("done in %s: %s", time.Since(started).Round(time.Second), filepath.Join(*out, "BENCHMARKS.md"))
	return nil
}

func benchCommand(quick bool) string {
	if quick {
		return "make bench-quick"
	}
	return "make bench"
}

// startBackend runs this binary's backend subcommand on the load CPU.
func startBackend(ctx context.Context, l *lab) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sluice-bench: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	l.backend = fmt.Sprintf("127.0.0.1:%d", port)
	cmd, err := l.procs.start(filepath.Join(l.dir, "backend.log"), loadCPU, []string{"GOMAXPROCS=1"},
		exe, "backend", "-listen", l.backend)
	if err != nil {
		return err
	}
	pid := cmd.Process.Pid
	return waitHTTP("http://"+l.backend+"/healthz", nil, 10*time.Second, func() bool { return !l.procs.exited(pid) })
}
