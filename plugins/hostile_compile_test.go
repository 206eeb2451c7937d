package plugins

import (
	"context"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// watModule compiles generated WebAssembly text with wat2wasm into the test's
// temporary directory and returns the .wasm path. The hostile modules below
// are generated because their point is their size.
func watModule(t testing.TB, name, text string) string {
	t.Helper()
	dir := t.TempDir()
	wat, wasm := filepath.Join(dir, name+".wat"), filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(wat, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// wat2wasm recurses once per nesting level: give it the stack.
	cmd := exec.Command("sh", "-c", `ulimit -s unlimited 2>/dev/null; exec wat2wasm "$0" -o "$1"`, wat, wasm)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, b)
	}
	return wasm
}

// guest wraps function definitions into a module that passes the ABI checks.
func guest(funcs string) string {
	return `(module (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (i32.const 0))
` + funcs + ")"
}

// nested is a function whose body nests depth instructions of kind (block
// or loop), in the flat text syntax (wat2wasm recurses on the folded one).
func nested(kind string, depth int) string {
	return "(func " + strings.Repeat(kind+" ", depth) + strings.Repeat("end ", depth) + ")\n"
}

func brTable(targets int) string {
	return "(func (block (br_table " + strings.Repeat("0 ", targets+1) + "(i32.const 0))))\n"
}

func flat(instructions int) string {
	return "(func " + strings.Repeat("(drop (i32.const 1))", instructions) + ")\n"
}

// A module shaped to make the compiler take minutes is refused before it is
// compiled, fast, with the limit it broke; modules just inside the limits
// load.
func TestLoadRefusesCompileBombs(t *testing.T) {
	tests := []struct {
		name    string
		funcs   string
		wantErr string // empty: loads
	}{
		{"100000 nested blocks", nested("block", 100000), "nests 100000 levels deep, over the limit of 2048"},
		{"1500 nested loops", nested("loop", 1500), "nests 3000 levels deep"},
		{"br_table of 100000 targets", brTable(100000), "br_table of 100000 targets, over the limit of 8192"},
		{"2 MiB function", flat(700000), "over the limit of 1MiB"},
		{"1000 nested loops", nested("loop", 1000), ""},
		{"2000 nested blocks", nested("block", 2000), ""},
		{"br_table of 8000 targets", brTable(8000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := watModule(t, "bomb", guest(tt.funcs))
			start := time.Now()
			_, err := tryLoad(t, plug("bomb", "bomb", func(p *config.Plugin) { p.Module = path }))
			took := time.Since(start)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if limit := raceSlowdown(time.Second); took > limit {
				t.Errorf("refusing took %v (over %v): the module was compiled", took, limit)
			}
		})
	}
}

func TestMaxModuleSize(t *testing.T) {
	info, err := os.Stat(fixture(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tryLoad(t, plug("n", "noop", func(p *config.Plugin) { p.MaxModuleSize = config.Size(info.Size() - 1) }))
	if err == nil || !strings.Contains(err.Error(), "larger than max_module_size") {
		t.Fatalf("error %v, want max_module_size named", err)
	}
	load(t, plug("n", "noop", func(p *config.Plugin) { p.MaxModuleSize = config.Size(info.Size()) }))
}

// Many functions, each within the shape limits but slow to compile together:
// the compile deadline stops the compilation between functions, and the
// generation already serving keeps answering within its hook deadline
// meanwhile.
func TestCompileTimeout(t *testing.T) {
	path := watModule(t, "slow", guest(strings.Repeat(nested("loop", 1000), 300)))
	serving := load(t, plug("n", "noop", func(p *config.Plugin) { p.Timeout.Duration = 50 * time.Millisecond }))
	c := serving.chain(t)

	var stop atomic.Bool
	var served, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if c.OnRequestHeaders(exchange("/")) != nil {
				failed.Add(1)
			}
			served.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	const timeout = 500 * time.Millisecond
	start := time.Now()
	_, err := serving.loader.Load(context.Background(), &config.Config{
		Plugins: []config.Plugin{plug("slow", "slow", func(p *config.Plugin) {
			p.Module = path
			p.CompileTimeout.Duration = timeout
		})},
	})
	took := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if err == nil || !strings.Contains(err.Error(), "compile_timeout (500ms)") {
		t.Fatalf("error %v, want the compile timeout", err)
	}
	// One function compiles without interruption: about a second here.
	if took > timeout+raceSlowdown(3*time.Second) {
		t.Errorf("the load returned %v after it started, with a %v compile timeout", took, timeout)
	}
	if failed.Load() > 0 {
		t.Errorf("%d of %d calls on the serving generation failed during the compilation", failed.Load(), served.Load())
	}
	t.Logf("refused after %v; %d calls served meanwhile", took, served.Load())
	serving.loader.mu.Lock()
	defer serving.loader.mu.Unlock()
	if n := len(serving.loader.modules); n != 1 {
		t.Errorf("loader holds %d modules, want only the serving one", n)
	}
}
