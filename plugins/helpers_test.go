package plugins

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// modules builds the fixtures, testdata/*.wat, as tests ask for them (see
// testdata/README.md); without wat2wasm those tests skip, or fail when CI
// is set.
var modules testkit.Modules

func TestMain(m *testing.M) {
	code := m.Run()
	modules.Close()
	os.Exit(code)
}

// fixture builds testdata/NAME.wat and returns the .wasm path.
func fixture(t testing.TB, name string) string {
	t.Helper()
	return modules.WAT(t, filepath.Join("testdata", name+".wat"))
}

// logBuffer collects log records for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bodies lets a plugin's module buffer bodies of up to 1MiB.
func bodies(p *config.Plugin) { p.MaxBodyBuffer = 1 << 20 }

// plug returns a [[plugin]] for a fixture, with the defaults the config
// package would fill. Its module is the fixture's .wat file, which load
// builds.
func plug(name, fixtureName string, opts ...func(*config.Plugin)) config.Plugin {
	p := config.Plugin{
		Name:        name,
		Module:      filepath.Join("testdata", fixtureName+".wat"),
		OnError:     "deny",
		MemoryLimit: 16 << 20,
		// Generous: tests about deadlines set their own, and the others
		// must not fail because a loaded machine ran a call slowly.
		Timeout:  config.Duration{Duration: time.Second},
		PoolSize: 2,
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// env is a loader and a loaded set for one test, closed at its end.
type env struct {
	loader *Loader
	set    *Set
	logs   *logBuffer
	shared *MemoryStore
}

// load builds a Set with one route "r" whose chain is the plugins in order.
func load(t testing.TB, plugins ...config.Plugin) *env {
	t.Helper()
	e, err := tryLoad(t, plugins...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tryLoad(t testing.TB, plugins ...config.Plugin) (*env, error) {
	t.Helper()
	for i, p := range plugins {
		if _, err := os.Stat(p.Module); err == nil && strings.HasSuffix(p.Module, ".wat") {
			plugins[i].Module = modules.WAT(t, p.Module)
		}
	}
	logs := &logBuffer{}
	shared := NewMemoryStore(time.Second)
	l := NewLoader(LoaderOptions{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Shared: shared,
	})
	names := make([]string, len(plugins))
	for i, p := range plugins {
		names[i] = p.Name
	}
	cfg := &config.Config{
		Plugins: plugins,
		Routes:  []config.Route{{Name: "r", PathPrefix: "/", Plugins: names}, {Name: "bare", PathPrefix: "/bare"}},
	}
	set, err := l.Load(context.Background(), cfg)
	e := &env{loader: l, set: set, logs: logs, shared: shared}
	t.Cleanup(func() {
		if e.set != nil {
			e.set.Close()
		}
		if err := l.Close(); err != nil {
			t.Errorf("Loader.Close: %v", err)
		}
		shared.Close()
	})
	return e, err
}

func (e *env) chain(t testing.TB) filter.Chain {
	t.Helper()
	c, ok := e.set.Chains()["r"]
	if !ok {
		t.Fatal("no chain for route r")
	}
	return c
}

func (e *env) stats(name string) Stats {
	for _, s := range e.set.Stats() {
		if s.Plugin == name {
			return s
		}
	}
	return Stats{}
}

func exchange(target string) *filter.Exchange {
	r := httptest.NewRequest("GET", target, nil)
	return &filter.Exchange{Request: r, Route: "r", ClientAddr: "127.0.0.1:5555", Scheme: "http"}
}

func session() *filter.Session {
	return &filter.Session{ID: "req-1", Route: "r", Upgrade: httptest.NewRequest("GET", "/ws", nil), ClientAddr: "127.0.0.1:5555"}
}

func text(dir filter.Direction, s string) *filter.Message {
	return &filter.Message{Direction: dir, Payload: []byte(s)}
}

// waitFor polls cond for up to two seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
