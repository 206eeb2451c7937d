package filtertool

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// TestOptions are the inputs of `sluice filter test`.
type TestOptions struct {
	// Files are the cases files.
	Files []string
	// Modules replace each file's module: every case runs against each
	// (the builds of one filter in several languages, for instance).
	Modules []string
	// Verbose prints each case's full report, not only failures.
	Verbose bool
}

// Test runs the cases of each file against its module (or each of
// Modules) and prints one line per case, the differences of each failing
// case, and a summary. It returns the exit status: 0 when every case
// passed, 1 when one failed, 2 when a file cannot be read.
func Test(ctx context.Context, o TestOptions, stdout, stderr io.Writer) int {
	passed, failed := 0, 0
	start := time.Now()
	for _, file := range o.Files {
		cs, err := LoadCases(file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		modules := o.Modules
		if len(modules) == 0 {
			if cs.Module == "" {
				fmt.Fprintf(stderr, "filtertool: %s names no module: set module = \"...\" or pass -module\n", file)
				return 2
			}
			modules = []string{cs.modulePath()}
		}
		for _, mod := range modules {
			p, f := runCases(ctx, cs, mod, o.Verbose, stdout)
			passed += p
			failed += f
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed (%s)\n", passed, failed, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		return 1
	}
	return 0
}

// runCases runs every case of cs against one module.
func runCases(ctx context.Context, cs *Cases, module string, verbose bool, w io.Writer) (passed, failed int) {
	pc := config.Plugin{Module: module, MemoryLimit: cs.Plugin.MemoryLimit, Timeout: cs.Plugin.Timeout, Config: cs.Config}
	r, err := NewRunner(pc)
	if err != nil {
		fmt.Fprintf(w, "FAIL %s: %v\n", module, err)
		return 0, len(cs.Case)
	}
	defer r.Close()
	for i := range cs.Case {
		k := &cs.Case[i]
		where := fmt.Sprintf("%s:%d", cs.file, k.line)
		diffs, res := runCase(ctx, r, k)
		if len(diffs) == 0 {
			passed++
			fmt.Fprintf(w, "ok   %s  %s\n", module, k.Name)
			if verbose && res != nil {
				PrintResult(indent{w}, res)
			}
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL %s  %s  (%s)\n", module, k.Name, where)
		for _, d := range diffs {
			fmt.Fprintf(w, "       %s\n", d)
		}
		if res != nil {
			PrintResult(indent{w}, res)
		}
	}
	return passed, failed
}

// runCase runs one case and returns its differences.
func runCase(ctx context.Context, r *Runner, k *Case) ([]string, *Result) {
	s, err := k.sample()
	if err != nil {
		return []string{"input: " + err.Error()}, nil
	}
	res, err := r.Run(ctx, s, k.Config)
	if err != nil {
		return []string{"load: " + err.Error()}, nil
	}
	return check(k, res), res
}

// indent writes every line indented, for reports under a case's line.
type indent struct{ w io.Writer }

func (in indent) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+16)
	start := true
	for _, c := range p {
		if start && c != '\n' {
			out = append(out, "       | "...)
		}
		out = append(out, c)
		start = c == '\n'
	}
	_, err := in.w.Write(out)
	return len(p), err
}
