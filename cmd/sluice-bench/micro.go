package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// microResult is the filter microbenchmarks' output.
type microResult struct {
	Command   string
	Raw       string
	Benchstat string
	Note      string
}

var reBenchFunc = regexp.MustCompile(`(?m)^func Benchmark\w+\(b \*testing\.B\)`)

// runMicro runs the plugins package's Go benchmarks on the proxy CPU and
// summarises them with benchstat when it can be installed.
func runMicro(ctx context.Context, root string, p plan, logf func(string, ...any)) microResult {
	logf("scenario 5: filter microbenchmarks")
	r := microResult{Command: fmt.Sprintf("go test -run '^$' -bench . -count %d -benchtime %s ./plugins/", p.BenchCount, p.BenchTime)}
	tests, _ := filepath.Glob(filepath.Join(root, "plugins", "*_test.go"))
	found := false
	for _, t := range tests {
		if b, err := os.ReadFile(t); err == nil && reBenchFunc.Match(b) {
			found = true
		}
	}
	if !found {
		r.Note = "the plugins package has no benchmarks yet"
		logf("  %s", r.Note)
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	args := []string{"go", "test", "-run", "^$", "-bench", ".", "-count", strconv.Itoa(p.BenchCount), "-benchtime", p.BenchTime, "./plugins/"}
	if pinning {
		// Compiling may use both CPUs; the benchmark binary inherits CPU 0
		// from go test only for its run, so pin the whole command to the
		// proxy CPU and accept a slower compile.
		args = append([]string{"taskset", "-c", strconv.Itoa(proxyCPU)}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	out, err := cmd.CombinedOutput()
	r.Raw = string(out)
	if err != nil {
		r.Note = fmt.Sprintf("go test failed: %v", err)
		logf("  %s\n%s", r.Note, out)
		return r
	}
	// benchstat names its column after the file: call it "plugins".
	tmp, err := os.MkdirTemp("", "sluice-bench-micro-")
	if err != nil {
		r.Note = err.Error()
		return r
	}
	defer os.RemoveAll(tmp)
	raw := filepath.Join(tmp, "plugins")
	if err := os.WriteFile(raw, out, 0o644); err != nil {
		r.Note = err.Error()
		return r
	}
	bs, err := benchstatBinary(ctx, logf)
	if err != nil {
		r.Note = fmt.Sprintf("benchstat unavailable (%v): raw output shown", err)
		logf("  %s", r.Note)
		return r
	}
	bcmd := exec.CommandContext(ctx, bs, "plugins")
	bcmd.Dir = tmp
	sout, err := bcmd.CombinedOutput()
	if err != nil {
		r.Note = fmt.Sprintf("benchstat failed: %v", err)
		return r
	}
	r.Benchstat = string(sout)
	logf("  benchstat:\n%s", sout)
	return r
}

// benchstatBinary installs benchstat into a GOBIN of its own in the temp dir
// (outside the module, so go.mod is untouched) unless it is already there.
func benchstatBinary(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("benchstat"); err == nil {
		return p, nil
	}
	gobin := filepath.Join(os.TempDir(), "sluice-bench-gobin")
	bin := filepath.Join(gobin, "benchstat")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	logf("  installing benchstat into %s", gobin)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "golang.org/x/perf/cmd/benchstat@latest")
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install benchstat: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}
