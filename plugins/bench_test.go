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

// The hook path of this package allocates nothing; the allocations left are
// wazero's per-call watcher for WithCloseOnContextDone (see RATIONALE.md):
// three objects, plus the watcher goroutine's descriptor whenever the
// previous call's watcher has not exited yet to be reused, which depends on
// scheduling.
func TestHookCallAllocations(t *testing.T) {
	const wazeroPerCall = 4
	for _, fx := range []string{"noop", "msg"} {
		e := load(t, plug(fx, fx, func(p *config.Plugin) { p.Timeout.Duration = time.Second }))
		c := e.chain(t)
		x := exchange("/")
		s := session()
		m := text(filter.ClientToUpstream, "hello")
		if c.Hooks().Has(filter.HookRequestHeaders) {
			if n := testing.AllocsPerRun(200, func() { c.OnRequestHeaders(x) }); n > wazeroPerCall {
				t.Errorf("%s request hook: %.1f allocations per call, want at most %d", fx, n, wazeroPerCall)
			}
		}
		if n := testing.AllocsPerRun(200, func() { c.OnMessage(s, m) }); n > wazeroPerCall {
			t.Errorf("%s message hook: %.1f allocations per call, want at most %d", fx, n, wazeroPerCall)
		}
	}
}

// BenchmarkDeadlineMechanism isolates what stopping runaway guests costs
// per call: the same trivial export called through wazero with and without
// WithCloseOnContextDone (whose compiled loop checks and per-call watcher
// goroutine are what the hook deadline rests on).
func BenchmarkDeadlineMechanism(b *testing.B) {
	bin, err := os.ReadFile(fixture("noop"))
	if err != nil {
		b.Fatal(err)
	}
	for _, close := range []bool{false, true} {
		name := "none"
		if close {
			name = "close_on_context_done"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(close))
			defer rt.Close(ctx)
			if err := instantiateHost(ctx, rt); err != nil {
				b.Fatal(err)
			}
			mod, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				b.Fatal(err)
			}
			f := mod.ExportedFunction(abi.FuncOnRequestHeaders)
			// A context that can be cancelled, as a hook call's is.
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stack := make([]uint64, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := f.CallWithStack(cctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
