package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
	"github.com/sluiceproxy/sluice/plugins/redisstore/redistest"
)

// fixtureDir holds the .wasm files built from testdata/*.wat.
var fixtureDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-redisstore-")
	if err == nil {
		err = buildFixtures(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisstore tests:", err)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildFixtures(dir string) error {
	wats, _ := filepath.Glob("testdata/*.wat")
	for _, wat := range wats {
		out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(wat), ".wat")+".wasm")
		if b, err := exec.Command("wat2wasm", wat, "-o", out).CombinedOutput(); err != nil {
			return fmt.Errorf("wat2wasm %s (install wabt): %v\n%s", wat, err, b)
		}
	}
	return nil
}

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

// hookEnv is one plugin on route "r", its shared state in Redis.
type hookEnv struct {
	chain filter.Chain
	set   *plugins.Set
	logs  *logBuffer
}

// loadOn loads the fixture module as plugin "p" (hook timeout 10ms, the
// default) with the given on_error, on store s.
func loadOn(t *testing.T, s plugins.SharedStore, module, onError string) *hookEnv {
	t.Helper()
	logs := &logBuffer{}
	l := plugins.NewLoader(plugins.LoaderOptions{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Shared: s,
	})
	cfg, err := config.Parse(fmt.Appendf(nil, `
[[upstream]]
name = "u"
targets = ["http://127.0.0.1:1"]
[[route]]
name = "r"
upstream = "u"
plugins = ["p"]
[[plugin]]
name = "p"
module = %q
on_error = %q
pool_size = 2
`, filepath.Join(fixtureDir, module+".wasm"), onError), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := l.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		set.Close()
		l.Close()
	})
	return &hookEnv{chain: set.Chains()["r"], set: set, logs: logs}
}

func (e *hookEnv) request() (*filter.Reply, time.Duration) {
	x := &filter.Exchange{Request: httptest.NewRequest("GET", "/", nil), Route: "r", ClientAddr: "127.0.0.1:5555", Scheme: "http"}
	start := time.Now()
	r := e.chain.OnRequestHeaders(x)
	return r, time.Since(start)
}

func (e *hookEnv) stats() plugins.Stats {
	for _, s := range e.set.Stats() {
		if s.Plugin == "p" {
			return s
		}
	}
	return plugins.Stats{}
}

func withTimeouts(c config.Shared, call, budget time.Duration) config.Shared {
	c.CallTimeout.Duration, c.HookBudget.Duration = call, budget
	return c
}

// TestHookDeadlineExcludesStoreWait: a Redis round trip longer than the
// hook's 10ms timeout, but within the call deadline, is not a runaway
// guest: the hook succeeds and no timeout is counted.
func TestHookDeadlineExcludesStoreWait(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, withTimeouts(sharedConfig(t, srv.Addr()), 500*time.Millisecond, time.Second))
	e := loadOn(t, s, "add", "deny")
	if r, _ := e.request(); r != nil {
		t.Fatalf("warm-up request: %d", r.Status)
	}
	srv.Sleep(60 * time.Millisecond)
	r, took := e.request()
	if r != nil {
		t.Fatalf("a 60ms Redis stall under a 10ms hook timeout denied the request (%d); logs:\n%s", r.Status, e.logs)
	}
	if took < 20*time.Millisecond {
		t.Fatalf("the request took %s: Redis was not stalled", took)
	}
	if st := e.stats(); st.Timeouts != 0 || st.Errors != 0 {
		t.Fatalf("stats after a slow round trip: %+v", st)
	}
}

// TestStoreFailurePolicy: Redis slow past the call deadline, or down, or
// a socket that never answers: the request gets the plugin's on_error
// within the call deadline, the failure is logged and counted as the
// store's, and the next request after Redis returns succeeds.
func TestStoreFailurePolicy(t *testing.T) {
	const call = 50 * time.Millisecond
	for _, onError := range []string{"deny", "allow"} {
		t.Run(onError, func(t *testing.T) {
			srv := redistest.Start(t)
			s := open(t, withTimeouts(sharedConfig(t, srv.Addr()), call, 2*call))
			e := loadOn(t, s, "add", onError)
			// Warm up (connection, script load) until a call succeeds: a
			// loaded machine may miss the 50ms deadline the first time.
			for i := 0; ; i++ {
				if r, _ := e.request(); r == nil && e.stats().Errors == 0 {
					break
				} else if i == 20 {
					t.Fatalf("warm-up: %v, %+v", r, e.stats())
				}
				e = loadOn(t, s, "add", onError)
			}
			check := func(what string) {
				t.Helper()
				r, took := e.request()
				if took > call+250*time.Millisecond {
					t.Fatalf("%s: the request took %s, call deadline %s", what, took, call)
				}
				switch {
				case onError == "deny" && (r == nil || r.Status != 503):
					t.Fatalf("%s: deny gave %v, want 503", what, r)
				case onError == "allow" && r != nil:
					t.Fatalf("%s: allow gave %d, want the request through", what, r.Status)
				}
			}
			srv.Sleep(time.Second)
			check("slow")
			srv.Kill()
			check("down")
			if st := e.stats(); st.SharedErrors != 2 || st.Timeouts != 0 || st.Traps != 0 {
				t.Fatalf("stats: %+v", st)
			}
			if !strings.Contains(e.logs.String(), "shared store") {
				t.Fatalf("the failure is not logged as the store's:\n%s", e.logs)
			}
			srv.Restart()
			var r *filter.Reply
			for range 20 {
				if r, _ = e.request(); r == nil && e.stats().SharedErrors == 2 {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatalf("no recovery after Redis restarted: %v, %+v", r, e.stats())
		})
	}
}

// TestHookBudget: a guest that spends its hook on round trips (100000
// adds) is stopped by shared.hook_budget, not left running for as long as
// the round trips take.
func TestHookBudget(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, withTimeouts(sharedConfig(t, srv.Addr()), 20*time.Millisecond, 50*time.Millisecond))
	e := loadOn(t, s, "adds", "deny")
	r, took := e.request()
	if r == nil || r.Status != 503 {
		t.Fatalf("got %v, want 503", r)
	}
	// 50ms of waiting plus the guest's 10ms, with room for a slow machine.
	if took > 400*time.Millisecond {
		t.Fatalf("the hook ran %s", took)
	}
	if !strings.Contains(e.logs.String(), "hook_budget") {
		t.Fatalf("the log does not name shared.hook_budget:\n%s", e.logs)
	}
}

// TestRedisValueQuota: the plugin's shared_max_bytes bounds one value in
// Redis as it does in memory.
func TestRedisValueQuota(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, sharedConfig(t, srv.Addr()))
	s.Limit("p", 100, 10)
	err := s.Set(context.Background(), "p", "k", make([]byte, 200), 0)
	if err == nil || !strings.Contains(err.Error(), "shared_max_bytes") {
		t.Fatalf("Set of 200 bytes under a 100-byte quota: %v", err)
	}
}
