package conformance

// Numbers per example and language: module size, instantiate time, and the
// cost of the example's hook through the real plugin host.
//
//	cd examples && go test -run '^$' -bench 'Hook|Instantiate' -benchmem ./conformance/
//	cd examples && SLUICE_NUMBERS=update go test -run TestNumbersTable -v ./conformance/

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// benchCase is the hook of one example the numbers measure, called the way
// the proxy calls it, with a config like the README's.
type benchCase struct {
	example string
	hook    string // what is measured, for the table
	config  string
	run     func(b *testing.B, c filter.Chain)
}

// chat is a typical chat message.
const chat = `{"type":"chat","user":"ann","text":"hello there, this is a message of a typical size","meta":{"ts":1700000000}}`

func requestHook(header http.Header, check func(*http.Request) error) func(*testing.B, filter.Chain) {
	return func(b *testing.B, c filter.Chain) {
		r, _ := http.NewRequest("GET", "http://example.com/api/x?a=1", nil)
		x := &filter.Exchange{Request: r, Route: "bench", ClientAddr: "127.0.0.1:5000", Scheme: "http"}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			// Each request brings its own header map, as in the proxy.
			r.Header = header.Clone()
			if reply := c.OnRequestHeaders(x); reply != nil {
				b.Fatalf("the hook answered %d %s", reply.Status, reply.Body)
			}
		}
		b.StopTimer()
		if err := check(r); err != nil {
			b.Fatal(err)
		}
	}
}

func messageHook(payload string, check func(string) error) func(*testing.B, filter.Chain) {
	return func(b *testing.B, c filter.Chain) {
		s := &filter.Session{ID: "bench", Route: "bench", ClientAddr: "127.0.0.1:5000"}
		in := []byte(payload)
		m := &filter.Message{Direction: filter.ClientToUpstream}
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			m.Payload = in
			if v := c.OnMessage(s, m); v.Action != filter.MessagePass {
				b.Fatalf("verdict %+v", v)
			}
		}
		b.StopTimer()
		if err := check(string(m.Payload)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCases() []benchCase {
	token := jwt(hs256, `{"sub":"alice","exp":4102444800}`, "s3cret")
	return []benchCase{
		{"auth", "request, HS256 JWT", "[plugin.config]\ntokens = [\"demo-token\"]\njwt_secret = \"s3cret\"\n",
			requestHook(http.Header{"Authorization": {"Bearer " + token}, "Accept": {"*/*"}}, func(r *http.Request) error {
				if r.Header.Get("X-User") != "alice" || r.Header.Get("Authorization") != "" {
					return fmt.Errorf("auth: upstream headers %v", r.Header)
				}
				return nil
			})},
		{"headers", "request, 3 rules", "[plugin.config.request]\nremove = [\"X-Internal\"]\nset = { \"X-Env\" = \"prod\" }\nadd = { \"X-Tag\" = \"a\" }\n",
			requestHook(http.Header{"X-Internal": {"1"}, "Accept": {"*/*"}}, func(r *http.Request) error {
				if r.Header.Get("X-Env") != "prod" || r.Header.Get("X-Internal") != "" || r.Header.Get("X-Tag") != "a" {
					return fmt.Errorf("headers: upstream headers %v", r.Header)
				}
				return nil
			})},
		{"redact", "message, 1 field masked", "[plugin.config]\nfields = [\"password\", \"ssn\"]\nwords = [\"secret\"]\n",
			messageHook(strings.Replace(chat, `"ts"`, `"password"`, 1), func(p string) error {
				if !strings.Contains(p, `"password":"***"`) {
					return fmt.Errorf("redact: %s", p)
				}
				return nil
			})},
		{"guard", "message, all rules", "[plugin.config]\nmax_size = 4096\ndeny_prefixes = [\"DROP\"]\nrate = 1000000\nmax_violations = 5\n",
			messageHook(chat, func(p string) error {
				if p != chat {
					return fmt.Errorf("guard changed the message: %s", p)
				}
				return nil
			})},
		{"noop", "message", "",
			messageHook(chat, func(p string) error {
				if p != chat {
					return fmt.Errorf("noop changed the message: %s", p)
				}
				return nil
			})},
	}
}

// benchLangs is the languages of an example, as the kit runs them.
func benchLangs(example string) []lang {
	for _, ex := range examples {
		if ex.name == example {
			return ex.langs
		}
	}
	return nil
}

// loadChain loads one plugin of module with config behind one route and
// returns its chain (closed when b ends).
func loadChain(tb testing.TB, name, modulePath, cfgText string) filter.Chain {
	text := "[[upstream]]\nname = \"u\"\ntargets = [\"http://127.0.0.1:9\"]\n" +
		fmt.Sprintf("\n[[route]]\nname = %q\npath_prefix = \"/\"\nupstream = \"u\"\nplugins = [%q]\n", name, name) +
		fmt.Sprintf("\n[[plugin]]\nname = %q\nmodule = %q\ntimeout = \"1s\"\n%s\n", name, filepath.ToSlash(modulePath), cfgText)
	cfg, err := config.Parse([]byte(text), "bench.toml")
	if err != nil {
		tb.Fatal(err)
	}
	set, err := theLoader().Load(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { set.Close() })
	return set.Chains()[name]
}

// BenchmarkHook measures one call of each example's hook through the real
// plugin chain (pool, deadline, host functions, guest), as the proxy makes
// it for a request or a WebSocket message, without the network:
// BenchmarkHook/<example>/<language>.
func BenchmarkHook(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.example, func(b *testing.B) {
			for _, m := range modulesOf(bc.example, benchLangs(bc.example)) {
				b.Run(m.lang, func(b *testing.B) {
					if m.path == "" {
						b.Skipf("%s [%s]: %s", bc.example, m.lang, m.why)
					}
					bc.run(b, loadChain(b, "bench-"+bc.example+"-"+m.lang, m.path, bc.config))
				})
			}
		})
	}
}

// instantiator compiles a module once in a runtime that has the host module
// (every function of abi.Imports, doing nothing) and WASI, as plugins does,
// and instantiates it again and again.
type instantiator struct {
	ctx context.Context
	r   wazero.Runtime
	cm  wazero.CompiledModule
}

func newInstantiator(tb testing.TB, path string) *instantiator {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	tb.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	hb := r.NewHostModuleBuilder(abi.HostModule)
	for name, sig := range abi.Imports {
		nothing := func(_ context.Context, _ api.Module, stack []uint64) {
			for i := range stack {
				stack[i] = 0
			}
		}
		hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(nothing), valueTypes(sig.Params), valueTypes(sig.Results)).Export(name)
	}
	if _, err := hb.Instantiate(ctx); err != nil {
		tb.Fatal(err)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	cm, err := r.CompileModule(ctx, bin)
	if err != nil {
		tb.Fatal(err)
	}
	return &instantiator{ctx, r, cm}
}

func valueTypes(ts []abi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}

// once instantiates the module, runs _initialize (a WASI reactor's start:
// for Go, the runtime's start-up) and closes the instance.
func (in *instantiator) once(tb testing.TB) {
	mod, err := in.r.InstantiateModule(in.ctx, in.cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		tb.Fatal(err)
	}
	if f := mod.ExportedFunction("_initialize"); f != nil {
		if _, err := f.Call(in.ctx); err != nil {
			tb.Fatal(err)
		}
	}
	mod.Close(in.ctx)
}

// BenchmarkInstantiate measures making one instance of each build from its
// compiled module: what the proxy pays per pooled instance, at load and
// when it replaces a discarded one. BenchmarkInstantiate/<example>/<language>.
func BenchmarkInstantiate(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.example, func(b *testing.B) {
			for _, m := range modulesOf(bc.example, benchLangs(bc.example)) {
				b.Run(m.lang, func(b *testing.B) {
					if m.path == "" {
						b.Skipf("%s [%s]: %s", bc.example, m.lang, m.why)
					}
					in := newInstantiator(b, m.path)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						in.once(b)
					}
				})
			}
		})
	}
}

// TestNumbersTable prints the table of sdk/README.md (SLUICE_NUMBERS=print)
// or rewrites it there (SLUICE_NUMBERS=update), from the same measurements
// as BenchmarkHook and BenchmarkInstantiate.
func TestNumbersTable(t *testing.T) {
	mode := os.Getenv("SLUICE_NUMBERS")
	if mode == "" {
		t.Skip("set SLUICE_NUMBERS=print or SLUICE_NUMBERS=update to measure")
	}
	if raceEnabled {
		t.Fatal("the race detector slows everything down: measure without -race")
	}
	var rows strings.Builder
	rows.WriteString("| example | hook measured | language | module | instantiate | hook call |\n")
	rows.WriteString("|---|---|---|---:|---:|---:|\n")
	for _, bc := range benchCases() {
		for _, m := range modulesOf(bc.example, benchLangs(bc.example)) {
			if m.path == "" {
				fmt.Fprintf(&rows, "| %s | %s | %s | not built | | |\n", bc.example, bc.hook, m.lang)
				continue
			}
			info, err := os.Stat(m.path)
			if err != nil {
				t.Fatal(err)
			}
			in := newInstantiator(t, m.path)
			inst := best(t, func(b *testing.B) {
				for range b.N {
					in.once(b)
				}
			})
			c := loadChain(t, "numbers-"+bc.example+"-"+m.lang, m.path, bc.config)
			hook := best(t, func(b *testing.B) { bc.run(b, c) })
			fmt.Fprintf(&rows, "| %s | %s | %s | %s | %s | %s |\n", bc.example, bc.hook, m.lang,
				size(info.Size()), duration(inst), duration(hook))
		}
	}
	table := rows.String()
	fmt.Print(table)
	if mode != "update" {
		return
	}
	const path = "../../sdk/README.md"
	const begin, end = "<!-- numbers:begin -->\n", "<!-- numbers:end -->"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(string(old), begin), strings.Index(string(old), end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q block", path, begin, end)
	}
	out := string(old[:i+len(begin)]) + table + string(old[j:])
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", path)
}

// best runs f as a benchmark three times, 300 ms each, and returns the
// fastest time per operation: on a shared machine, the others' load only
// ever makes a run slower.
func best(t *testing.T, f func(*testing.B)) time.Duration {
	if err := flag.Set("test.benchtime", "300ms"); err != nil {
		t.Fatal(err)
	}
	var min time.Duration
	for range 3 {
		r := testing.Benchmark(f)
		if r.N == 0 {
			t.Fatal("a benchmark failed")
		}
		if d := time.Duration(r.NsPerOp()); min == 0 || d < min {
			min = d
		}
	}
	return min
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func duration(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Microsecond:
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%d ns", d.Nanoseconds())
}
