package plugins

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/tetratelabs/wazero"
)

// A guest that recurses for ever traps at stack_limit, reported as a stack
// overflow; one that recurses a few hundred frames deep runs.
func TestStackGuard(t *testing.T) {
	e := load(t, plug("rec", "recurse", func(p *config.Plugin) { p.StackLimit = 256 << 10 }))
	c := e.chain(t)
	if r := c.OnRequestHeaders(exchange("/")); r == nil || r.Status != 503 {
		t.Fatalf("reply %+v, want 503", r)
	}
	if !strings.Contains(e.logs.String(), "stack overflow: the call stack passed the plugin's stack_limit of 256KiB") {
		t.Errorf("the log does not explain the trap:\n%s", e.logs)
	}
	if v := c.OnMessage(session(), text(filter.ClientToUpstream, strings.Repeat("x", 300))); v.Action != filter.MessagePass {
		t.Errorf("300 frames deep: verdict %+v, want pass; log:\n%s", v, e.logs)
	}
	s := e.stats("rec")
	if s.Traps != 1 || s.Errors != 1 {
		t.Errorf("stats %+v, want one trap", s)
	}
}

// The guard's rewrite keeps every kind of module valid: imported and
// defined globals, tables, start functions, modules without a global
// section (every fixture in testdata loads and behaves with it on).
func TestStackGuardKeepsModulesValid(t *testing.T) {
	for _, name := range []string{"noop", "misc", "counter", "wasi", "initialize", "recurse"} {
		t.Run(name, func(t *testing.T) {
			bin, err := os.ReadFile(fixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := guardStack(bin, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) <= len(bin) {
				t.Errorf("guarded module of %d bytes, original %d: nothing added", len(out), len(bin))
			}
			// wazero validates the whole module when it compiles it.
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			if _, err := rt.CompileModule(ctx, out); err != nil {
				t.Errorf("the guarded module is not valid: %v", err)
			}
		})
	}
	if _, _, err := guardStack([]byte("\x00asm\x01\x00\x00\x00\x01\x05"), 1<<20); err == nil {
		t.Error("a truncated module was accepted")
	}
}

// The guard bounds the stack wazero really allocates: everything a
// recursion for ever allocates (every stack it grew through, the error and
// its trace) stays within 4 × stack_limit, what Budget.Stack counts for one
// hook (a stack of up to twice the limit, kept, plus the copy while it
// grows). Without the guard the same guests grow one stack to 80MiB.
func TestStackGuardBoundsRealStack(t *testing.T) {
	const limit = 1 << 20
	for _, name := range []string{"recurse", "wide"} {
		t.Run(name, func(t *testing.T) {
			e := load(t, plug(name, name, func(p *config.Plugin) { p.StackLimit = limit }))
			c := e.chain(t)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := c.OnRequestHeaders(exchange("/"))
			runtime.ReadMemStats(&after)
			if r == nil || r.Status != 503 || !strings.Contains(e.logs.String(), "stack overflow") {
				t.Fatalf("reply %+v, want 503 for a stack overflow; log:\n%s", r, e.logs)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: the call allocated %d KiB with stack_limit %d KiB", name, alloc>>10, limit>>10)
			if alloc > 4*limit {
				t.Errorf("the call allocated %d bytes, over 4 x stack_limit (%d)", alloc, 4*limit)
			}
		})
	}
}

// A module may not define the export the guard adds.
func TestStackGuardReservedExport(t *testing.T) {
	// (module (global (export "sluice_stack_used") i32 (i32.const 0)) (func))
	bin := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type () -> ()
		"\x03\x02\x01\x00" + // one function
		"\x06\x06\x01\x7f\x00\x41\x00\x0b" + // global i32 = 0
		"\x07\x15\x01\x11sluice_stack_used\x03\x00" + // export the global
		"\x0a\x04\x01\x02\x00\x0b") // code
	if _, _, err := guardStack(bin, 1<<20); err == nil || !strings.Contains(err.Error(), "a name the host reserves") {
		t.Errorf("err = %v, want the reserved name refused", err)
	}
}

// BenchmarkStackGuard measures what the guard costs a guest's calls, with
// testdata/recurse.wat compiled as it is and with the guard: calls=nested is
// one hook call that makes 1,000 nested calls (each through a wrapper),
// calls=leaf one that calls a leaf function 1,000 times (left unwrapped).
//
//	go test -run '^$' -bench StackGuard -count 8 ./plugins/ | benchstat -col /module -
func BenchmarkStackGuard(b *testing.B) {
	bin, err := os.ReadFile(fixture(b, "recurse"))
	if err != nil {
		b.Fatal(err)
	}
	guarded, _, err := guardStack(bin, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	for _, calls := range []struct {
		name, export string
		args         []uint64
	}{{"nested", "sluice_on_message", []uint64{0, 0, 1000}}, {"leaf", "sluice_on_upgrade", []uint64{0, 0, 0}}} {
		for _, m := range []struct {
			name string
			bin  []byte
		}{{"plain", bin}, {"guarded", guarded}} {
			b.Run("calls="+calls.name+"/module="+m.name, func(b *testing.B) {
				ctx := context.Background()
				rt := wazero.NewRuntime(ctx)
				defer rt.Close(ctx)
				mod, err := rt.Instantiate(ctx, m.bin)
				if err != nil {
					b.Fatal(err)
				}
				f := mod.ExportedFunction(calls.export)
				stack := make([]uint64, 3)
				b.ResetTimer()
				for range b.N {
					copy(stack, calls.args)
					if err := f.CallWithStack(ctx, stack); err != nil || stack[0] != 0 {
						b.Fatal(err, stack[0])
					}
				}
			})
		}
	}
}
