package plugins

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/tetratelabs/wazero"
)

// BenchmarkHookCall is one trivial on_request_headers call through a chain:
// pool take, deadline, guest call, pool return.
func BenchmarkHookCall(b *testing.B) {
	e := load(b, plug("n", "noop", func(p *config.Plugin) { p.Timeout.Duration = time.Second }))
	c := e.chain(b)
	x := exchange("/")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if r := c.OnRequestHeaders(x); r != nil {
			b.Fatal(r)
		}
	}
}

// BenchmarkHookCallParallel is BenchmarkHookCall from GOMAXPROCS goroutines
// sharing one chain.
func BenchmarkHookCallParallel(b *testing.B) {
	e := load(b, plug("n", "noop", func(p *config.Plugin) { p.Timeout.Duration = time.Second; p.PoolSize = 0 }))
	c := e.chain(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := exchange("/")
		for pb.Next() {
			if r := c.OnRequestHeaders(x); r != nil {
				b.Error(r)
				return
			}
		}
	})
}

// BenchmarkMessageHook is one on_message call that reads the payload and
// passes it (the "anything else" branch of msg.wat).
func BenchmarkMessageHook(b *testing.B) {
	e := load(b, plug("m", "msg", func(p *config.Plugin) { p.Timeout.Duration = time.Second }))
	c := e.chain(b)
	s := session()
	m := text(filter.ClientToUpstream, "hello, a 32-byte chat message...")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if v := c.OnMessage(s, m); v.Action != filter.MessagePass {
			b.Fatal(v)
		}
	}
}

// BenchmarkHeaderRoundTrip is the header-heavy case: two filters that set,
// add, remove, list and read headers (hdr_a then hdr_b).
func BenchmarkHeaderRoundTrip(b *testing.B) {
	e := load(b, plug("a", "hdr_a", func(p *config.Plugin) { p.Timeout.Duration = time.Second }),
		plug("b", "hdr_b", func(p *config.Plugin) { p.Timeout.Duration = time.Second }))
	c := e.chain(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		x := exchange("/")
		if r := c.OnRequestHeaders(x); r != nil {
			b.Fatal(r)
		}
	}
}

// A hook call allocates nothing: the deadline needs no context, timer or
// watcher goroutine per call (see RATIONALE.md).
func TestHookCallAllocations(t *testing.T) {
	const maxAllocs = 0
	for _, fx := range []string{"noop", "msg"} {
		e := load(t, plug(fx, fx, func(p *config.Plugin) { p.Timeout.Duration = time.Second }))
		c := e.chain(t)
		x := exchange("/")
		s := session()
		m := text(filter.ClientToUpstream, "hello")
		if c.Hooks().Has(filter.HookRequestHeaders) {
			if n := testing.AllocsPerRun(200, func() { c.OnRequestHeaders(x) }); n > maxAllocs {
				t.Errorf("%s request hook: %.1f allocations per call, want at most %d", fx, n, maxAllocs)
			}
		}
		if n := testing.AllocsPerRun(200, func() { c.OnMessage(s, m) }); n > maxAllocs {
			t.Errorf("%s message hook: %.1f allocations per call, want at most %d", fx, n, maxAllocs)
		}
	}
}

// BenchmarkDeadlineMechanism isolates what stopping runaway guests costs:
// a trivial export ("call") and a loop of 1000 iterations ("loop1000"),
// called through wazero with no way to stop the guest ("none"), with
// wazero's WithCloseOnContextDone (a watcher goroutine per call, an exit to
// Go per loop iteration), and instrumented as this package does.
func BenchmarkDeadlineMechanism(b *testing.B) {
	bin, err := os.ReadFile(fixture(b, "spin"))
	if err != nil {
		b.Fatal(err)
	}
	for _, mech := range []string{"none", "close_on_context_done", "instrumented"} {
		ctx := context.Background()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(mech == "close_on_context_done"))
		code := bin
		if mech == "instrumented" {
			if code, err = instrument(bin); err != nil {
				b.Fatal(err)
			}
			if err := instantiateTick(ctx, rt); err != nil {
				b.Fatal(err)
			}
		}
		mod, err := rt.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			b.Fatal(err)
		}
		// The context of a hook call: cancellable, armed per call.
		in := &instance{}
		in.ctx = newCallCtx(in)
		for _, fn := range []struct {
			name, export string
			arg          uint64
		}{{"call", abi.FuncOnRequestHeaders, 0}, {"loop1000", "spin", 1000}} {
			f := mod.ExportedFunction(fn.export)
			b.Run(mech+"/"+fn.name, func(b *testing.B) {
				stack := make([]uint64, 1)
				b.ReportAllocs()
				for b.Loop() {
					in.ctx.arm(time.Second)
					stack[0] = fn.arg
					if err := f.CallWithStack(in.ctx, stack); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		rt.Close(ctx)
	}
}
