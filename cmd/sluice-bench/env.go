package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// repoRoot walks up from the working directory to the module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("sluice-bench: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/sluiceproxy/sluice\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("sluice-bench: run me inside the sluice repository")
		}
		dir = parent
	}
}

// raiseNofile lifts the soft descriptor limit to the hard one for this process
// and, because it is set explicitly, for every child it starts (Go would
// otherwise restore the original soft limit in children).
func raiseNofile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("sluice-bench: getrlimit: %w", err)
	}
	want := uint64(1 << 20)
	if lim.Max < want {
		// Raising the hard limit needs CAP_SYS_RESOURCE; try, then settle.
		try := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("sluice-bench: setrlimit: %w", err)
	}
	return lim.Cur, nil
}

// installTools runs scripts/install-bench-tools.sh when a tool is missing.
func installTools(root string, logf func(string, ...any)) error {
	missing := false
	for _, t := range []string{"wrk", "nginx", "gnuplot", "taskset"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	logf("installing benchmark tools")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "install-bench-tools.sh"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sluice-bench: scripts/install-bench-tools.sh: %w", err)
	}
	return nil
}

// buildSluice builds bin/sluice; its error means the Sluice targets are skipped.
func buildSluice(root string, logf func(string, ...any)) error {
	if _, err := os.Stat(filepath.Join(root, "cmd", "sluice", "main.go")); err != nil {
		return errors.New("cmd/sluice does not exist yet")
	}
	logf("building bin/sluice")
	cmd := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "sluice"), "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		logf("bin/sluice does not build: %v\n%s", err, out)
		return fmt.Errorf("cmd/sluice does not build: %v", err)
	}
	return nil
}

// benchFilters are the example filters the scenarios use.
var benchFilters = []string{"headers", "auth", "noop", "redact"}

// buildFilters runs examples/build.sh when a filter module is missing, and
// records which filters can be loaded.
func buildFilters(root string, l *lab, logf func(string, ...any)) {
	missing := func() []string {
		var m []string
		for _, f := range benchFilters {
			if _, err := os.Stat(l.wasmPath(f)); err != nil {
				m = append(m, f)
			}
		}
		return m
	}
	if m := missing(); len(m) > 0 {
		if _, err := os.Stat(filepath.Join(root, "examples", "build.sh")); err == nil {
			logf("building the example filters (missing: %s)", strings.Join(m, ", "))
			cmd := exec.Command("bash", "examples/build.sh")
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				logf("examples/build.sh failed: %v\n%s", err, out)
			}
		}
	}
	for _, f := range benchFilters {
		if _, err := os.Stat(l.wasmPath(f)); err != nil {
			l.wasmOK[f] = fmt.Errorf("examples/%s/%s.wasm is not built", f, f)
		}
	}
}

// probeSluiceFlags picks, from the flags bin/sluice offers, those that set
// its logging to what the nginx config does: no access log, errors only.
func probeSluiceFlags(bin string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	help := string(out)
	has := func(name string) bool {
		return strings.Contains(help, "-"+name+" ") || strings.Contains(help, "-"+name+"\n")
	}
	var args []string
	switch {
	case has("access-log"):
		args = append(args, "-access-log=false")
	case has("accesslog"):
		args = append(args, "-accesslog=false")
	}
	if has("log-level") {
		args = append(args, "-log-level=warn")
	}
	return args
}

// pinSelf moves every thread of the harness to the load CPU; threads the Go
// runtime creates later inherit the mask.
func pinSelf(logf func(string, ...any)) error {
	if !pinning {
		logf("one CPU only: running unpinned")
		return nil
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(loadCPU), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sluice-bench: taskset: %v: %s", err, out)
	}
	runtime.GOMAXPROCS(1)
	return nil
}

// machine describes where the numbers come from.
type machine struct {
	CPUs    int
	Model   string
	Memory  string
	Kernel  string
	Go      string
	Nginx   string
	Wrk     string
	Gnuplot string
	Commit  string
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(fs[1], 64)
				m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	first := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	m.Nginx = strings.TrimPrefix(first("nginx", "-v"), "nginx version: ")
	m.Wrk = strings.Fields(first("wrk", "-v") + " ?")[1]
	m.Gnuplot = first("gnuplot", "--version")
	m.Commit = first("git", "rev-parse", "--short", "HEAD")
	return m
}
