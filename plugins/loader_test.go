package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name    string
		plugin  config.Plugin
		wantErr []string
	}{
		{"missing ABI version", plug("auth", "noversion"),
			[]string{`plugins: plugin "auth" (`, "noversion.wasm): ", "does not export sluice_abi_version"}},
		{"wrong ABI version", plug("auth", "version2"),
			[]string{`plugins: plugin "auth" (`, "version2.wasm): built for ABI v2, this host speaks v1"}},
		{"unknown import", plug("auth", "unknown_import"),
			[]string{"imports sluice.get_headerz, which this host does not provide"}},
		{"wrong import signature", plug("auth", "bad_import_sig"),
			[]string{"imports sluice.get_header with signature (i32) -> i32, but this host provides (i32, i32, i32, i32, i32) -> i32"}},
		{"import from another module", plug("auth", "other_import"),
			[]string{`imports env.abort: a filter may import only from "sluice" and "wasi_snapshot_preview1"`}},
		{"wrong export signature", plug("auth", "bad_export_sig"),
			[]string{"exports sluice_on_message with signature () -> i32, want (i32, i32, i32) -> i32"}},
		{"no memory export", plug("auth", "no_memory"),
			[]string{`does not export its memory as "memory"`}},
		{"configure refuses", plug("auth", "configure_fail"),
			[]string{"sluice_configure refused its config (returned 7)"}},
		{"memory over the cap", plug("auth", "bigmem"),
			[]string{"declares a minimum memory of 19200KiB (300 pages), over its memory_limit of 16MiB (256 pages)"}},
		{"sha256 mismatch", plug("auth", "noop", func(p *config.Plugin) { p.SHA256 = strings.Repeat("ab", 32) }),
			[]string{"sha256 is ", "but the config pins abab"}},
		{"missing file", plug("auth", "does-not-exist"),
			[]string{`plugins: plugin "auth" (`, "no such file"}},
		{"bad on_error", plug("auth", "noop", func(p *config.Plugin) { p.OnError = "maybe" }),
			[]string{`on_error is "maybe"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tryLoad(t, tt.plugin)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

func TestLoadSHA256PinMatches(t *testing.T) {
	bin, err := os.ReadFile(fixture(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	load(t, plug("a", "noop", func(p *config.Plugin) { p.SHA256 = strings.ToUpper(hex.EncodeToString(sum[:])) }))
}

// A failed Load closes what it built: the Loader holds no module afterwards.
func TestLoadAllOrNothing(t *testing.T) {
	e, err := tryLoad(t, plug("ok", "noop"), plug("bad", "version2"))
	if err == nil {
		t.Fatal("Load succeeded")
	}
	if !strings.Contains(err.Error(), `plugin "bad"`) {
		t.Fatalf("error %q does not name the bad plugin", err)
	}
	e.loader.mu.Lock()
	n := len(e.loader.modules)
	e.loader.mu.Unlock()
	if n != 0 {
		t.Fatalf("loader still holds %d modules after a failed Load", n)
	}
}

func TestHostModuleImplementsEveryImport(t *testing.T) {
	for name, sig := range abi.Imports {
		hf, ok := hostFuncs[name]
		if !ok {
			t.Errorf("%s is in abi.Imports but not implemented", name)
			continue
		}
		if len(hf.params) != len(sig.Params) {
			t.Errorf("%s: %d parameter names for %d parameters", name, len(hf.params), len(sig.Params))
		}
	}
	for name := range hostFuncs {
		if _, ok := abi.Imports[name]; !ok {
			t.Errorf("%s is implemented but not in abi.Imports", name)
		}
	}
}

func TestInitializeRunsStartDoesNot(t *testing.T) {
	e := load(t, plug("init", "initialize"))
	if r := e.chain(t).OnRequestHeaders(exchange("/")); r != nil {
		t.Fatalf("got reply %+v: _initialize did not run before the hook", r)
	}
	if s := e.stats("init"); s.Errors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestChainHooksAndRoutes(t *testing.T) {
	e := load(t, plug("h", "hooks", bodies), plug("n", "noop"))
	if _, ok := e.set.Chains()["bare"]; ok {
		t.Error("a route without plugins has a chain")
	}
	want := filter.HookRequestHeaders | filter.HookRequestBody | filter.HookMessage
	if got := e.chain(t).Hooks(); got != want {
		t.Errorf("Hooks() = %b, want %b", got, want)
	}
	// Alone, hooks.wasm declares no message hook although it exports one.
	e2 := load(t, plug("h", "hooks"))
	if got := e2.chain(t).Hooks(); got.Has(filter.HookMessage) {
		t.Errorf("Hooks() = %b has HookMessage, which sluice_hooks left out", got)
	}
}

// Reloading the same module reuses its compiled form; the old Set's close
// keeps it for the new one.
func TestReloadReusesCompiledModule(t *testing.T) {
	e := load(t, plug("a", "noop"), plug("b", "noop"))
	a := plug("a", "noop")
	a.Module = fixture(t, "noop")
	cfg := &config.Config{Plugins: []config.Plugin{a}, Routes: []config.Route{{Name: "r", Plugins: []string{"a"}}}}
	old := e.set
	e.loader.mu.Lock()
	var before *module
	for _, m := range e.loader.modules {
		before = m
	}
	refs := before.refs
	e.loader.mu.Unlock()
	if refs != 2 {
		t.Fatalf("two plugins of one module hold %d references, want 2", refs)
	}
	next, err := e.loader.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.set = next
	old.Close()
	e.loader.mu.Lock()
	defer e.loader.mu.Unlock()
	if len(e.loader.modules) != 1 {
		t.Fatalf("loader holds %d modules, want 1", len(e.loader.modules))
	}
	for _, m := range e.loader.modules {
		if m != before || m.refs != 1 {
			t.Fatalf("module was recompiled or miscounted (same=%v refs=%d)", m == before, m.refs)
		}
	}
}

func TestMinMemoryPages(t *testing.T) {
	for name, want := range map[string]uint64{"noop": 1, "bigmem": 300} {
		bin, err := os.ReadFile(fixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := minMemoryPages(bin)
		if !ok || got != want {
			t.Errorf("%s: minMemoryPages = %d, %v; want %d", name, got, ok, want)
		}
	}
	if _, ok := minMemoryPages([]byte("not wasm")); ok {
		t.Error("minMemoryPages accepted garbage")
	}
}

func TestStatsOrder(t *testing.T) {
	e := load(t, plug("b", "noop"), plug("a", "noop"))
	var names []string
	for _, s := range e.set.Stats() {
		names = append(names, s.Plugin)
	}
	if !sort.IsSorted(sort.Reverse(sort.StringSlice(names))) || len(names) != 2 {
		t.Fatalf("Stats() plugins = %v, want config order [b a]", names)
	}
}

// LoadModules compiles the bytes it is given, not the file the config
// names, checks the pin against them, and Set.Modules reports their sha256.
func TestLoadModulesUsesTheBytesGiven(t *testing.T) {
	bin, err := os.ReadFile(fixture(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	want := hex.EncodeToString(sum[:])
	l := NewLoader(LoaderOptions{})
	defer l.Close()
	for _, tc := range []struct {
		name, pin string
		ok        bool
	}{
		{"no pin", "", true},
		{"pin of the bytes", want, true},
		{"pin of other bytes", strings.Repeat("0", 64), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{
				// The file does not exist: only the bytes given can load.
				Plugins: []config.Plugin{{Name: "a", Module: filepath.Join(t.TempDir(), "gone.wasm"), SHA256: tc.pin}},
				Routes:  []config.Route{{Name: "r", PathPrefix: "/", Plugins: []string{"a"}}},
			}
			set, err := l.LoadModules(context.Background(), cfg, map[string][]byte{"a": bin})
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "pins") {
					set.Close()
					t.Fatalf("LoadModules: %v, want a pin mismatch", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			if got := set.Modules()["a"]; got != want {
				t.Fatalf("Modules reports %s, want %s", got, want)
			}
		})
	}
}
