package main

// Hot reload with real filters: the example modules built from source with
// TinyGo and standard Go, run by the plugins package, wired as serve wires
// them (one Loader for every generation, reload.Reloader).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/reload"
	"github.com/sluiceproxy/sluice/host/testkit"
	"github.com/sluiceproxy/sluice/plugins"
)

// modules builds the filter modules of the tests, once per test binary:
// the headers and redact examples with standard Go and, when it is
// installed, TinyGo, and the WAT fixtures of testdata/ with wat2wasm.
var modules testkit.Modules

func TestMain(m *testing.M) {
	code := m.Run()
	modules.Close()
	os.Exit(code)
}

// buildModules returns the path of each module by key: "headers.go",
// "headers.tinygo" (only with TinyGo), "redact.go", "abi_v2" (a fixture)...
func buildModules(t testing.TB) map[string]string {
	t.Helper()
	mods := map[string]string{}
	_, noTinyGo := testkit.LookTool("tinygo", testkit.TinyGoPlaces...)
	for _, name := range []string{"headers", "redact"} {
		src, _ := filepath.Abs(filepath.Join("..", "..", "examples", name))
		mods[name+".go"] = modules.Go(t, src)
		if noTinyGo == nil {
			mods[name+".tinygo"] = modules.TinyGo(t, src)
		}
	}
	wats, _ := filepath.Glob("testdata/*.wat")
	for _, wat := range wats {
		mods[strings.TrimSuffix(filepath.Base(wat), ".wat")] = modules.WAT(t, wat)
	}
	return mods
}

// flavour returns the module key for name built with TinyGo, or with Go
// when TinyGo is not installed.
func flavour(t testing.TB, name string) string {
	m := buildModules(t)
	if p := m[name+".tinygo"]; p != "" {
		return p
	}
	t.Logf("tinygo not installed: using the Go build of %s", name)
	return m[name+".go"]
}

// e2eBackend answers /api/ with "ok" and echoes WebSocket messages on /ws.
func e2eBackend(t testing.TB) *httptest.Server {
	up := websocket.Upgrader{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			io.WriteString(w, "ok")
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// version is one side of the alternation: a build of each filter and the
// stamp its config makes it leave.
type version struct {
	headers, redact string // module paths
	stamp           string
}

// e2eConfig routes /api/ through the headers filter, which sets
// X-Version: <stamp> on responses, and /ws through the redact filter, which
// masks "secret" in messages with [<stamp>].
//
// The hook deadline is 1s, not the default 10ms: these tests share two
// cores with compilers and other tests, and a starved hook call that
// misses a 10ms deadline fails closed (1011), which is the sandbox doing
// its job, not the reload under test.
func e2eConfig(backend string, v version, extra string) string {
	return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
%s
[admin]
listen = "127.0.0.1:0"

[[upstream]]
name = "app"
targets = [%q]

[[route]]
name = "api"
path_prefix = "/api/"
upstream = "app"
plugins = ["headers"]

[[route]]
name = "ws"
path_prefix = "/ws"
upstream = "app"
plugins = ["redact"]

[[plugin]]
name = "headers"
module = %q
timeout = "1s"
  [plugin.config.response]
  set = { "X-Version" = %q }

[[plugin]]
name = "redact"
module = %q
timeout = "1s"
  [plugin.config]
  words = ["secret"]
  mask = "[%s]"
`, extra, backend, v.headers, v.stamp, v.redact, v.stamp)
}

// e2eProxy is a proxy served as serve serves it, with the test holding the
// Reloader.
type e2eProxy struct {
	t      testing.TB
	path   string
	r      *reload.Reloader
	url    string
	admin  string
	loader *plugins.Loader
}

func startE2E(t testing.TB, conf string) *e2eProxy {
	t.Helper()
	dir := t.TempDir()
	e := &e2eProxy{t: t, path: filepath.Join(dir, "proxy.toml")}
	e.write(conf)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e.loader = plugins.NewLoader(plugins.LoaderOptions{Logger: log, BaseDir: dir})
	r, err := reload.New(e.path, loaderBuilder(e.loader), host.Options{Logger: log})
	if err != nil {
		e.loader.Close()
		t.Fatal(err)
	}
	e.r = r
	if err := r.Proxy().Listen(); err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + r.Proxy().Addr().String()
	e.admin = "http://" + r.Proxy().AdminAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Proxy().Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		r.Close()
		// Generations retired just before the end release themselves
		// once drained; give them that moment before the Loader goes.
		deadline := time.Now().Add(2 * time.Second)
		for {
			if err := e.loader.Close(); err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Errorf("Loader.Close: %v", err)
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return e
}

// write replaces proxy.toml with a rename, as editors do.
func (e *e2eProxy) write(conf string) {
	e.t.Helper()
	tmp := e.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(conf), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.path); err != nil {
		e.t.Fatal(err)
	}
}

// postReload calls POST /reload on the admin listener.
func (e *e2eProxy) postReload() (int, reload.Status) {
	e.t.Helper()
	resp, err := http.Post(e.admin+"/reload", "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st reload.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, st
}

// TestHotReloadUnderLoad keeps HTTP requests and WebSocket sessions running
// while the filters are swapped many times between two versions, each a
// different build (TinyGo, Go) with a different config. No request fails,
// no WebSocket drops, every response and message shows exactly one of the
// two versions, and after the last reload only the last one.
func TestHotReloadUnderLoad(t *testing.T) {
	m := buildModules(t)
	back := e2eBackend(t)
	a := version{headers: flavour(t, "headers"), redact: flavour(t, "redact"), stamp: "A"}
	b := version{headers: m["headers.go"], redact: m["redact.go"], stamp: "B"}
	reloads, clients, sessions := 20, 4, 6
	if raceEnabled {
		// The race detector makes compiling and starting a 3 MB Go-built
		// module take seconds; B is then the TinyGo build with its own
		// config, and the run without -race alternates the toolchains.
		b.headers, b.redact = a.headers, a.redact
		reloads = 12
	}
	if testing.Short() {
		reloads = 6
	}
	e := startE2E(t, e2eConfig(back.URL, a, ""))

	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		seen     = map[string]int{} // "http A", "ws B", ...
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	count := func(k string) { mu.Lock(); seen[k]++; mu.Unlock() }

	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; !stop.Load(); i++ {
				resp, err := client.Get(fmt.Sprintf("%s/api/%d/%d", e.url, c, i))
				if err != nil {
					fail("GET: %v", err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				v := resp.Header.Values("X-Version")
				if resp.StatusCode != 200 || string(body) != "ok" || len(v) != 1 || (v[0] != "A" && v[0] != "B") {
					fail("GET: %s %q X-Version %q", resp.Status, body, v)
					continue
				}
				count("http " + v[0])
			}
		}()
	}
	conns := make([]*websocket.Conn, sessions)
	for s := range sessions {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[s] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				msg := fmt.Sprintf("s%d m%d secret", s, i)
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					fail("session %d write: %v", s, err)
					return
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, got, err := c.ReadMessage()
				if err != nil {
					fail("session %d dropped: %v", s, err)
					return
				}
				base := strings.TrimSuffix(msg, "secret")
				switch string(got) {
				case base + "[A]":
					count("ws A")
				case base + "[B]":
					count("ws B")
				default:
					fail("session %d: sent %q, got %q", s, msg, got)
				}
			}
		}()
	}

	cur := a
	var took []time.Duration
	for i := range reloads {
		time.Sleep(40 * time.Millisecond)
		next := b
		if cur.stamp == "B" {
			next = a
		}
		e.write(e2eConfig(back.URL, next, ""))
		start := time.Now()
		if i%2 == 0 {
			if code, st := e.postReload(); code != 200 || st.LastResult != reload.Loaded {
				t.Fatalf("reload %d: %d %+v", i, code, st)
			}
		} else if st, err := e.r.Reload("test", false); err != nil || st.LastResult != reload.Loaded {
			t.Fatalf("reload %d: %v %+v", i, err, st)
		}
		took = append(took, time.Since(start))
		cur = next
	}
	time.Sleep(40 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	// After the last reload: only the last version, on new requests and on
	// the sessions that lived through every reload.
	for i := range 5 {
		resp, err := http.Get(fmt.Sprintf("%s/api/after/%d", e.url, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("X-Version"); v != cur.stamp {
			t.Errorf("after the last reload: X-Version %q, want %q", v, cur.stamp)
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
	for s, c := range conns {
		if err := c.WriteMessage(websocket.TextMessage, []byte("last secret")); err != nil {
			t.Errorf("session %d: %v", s, err)
			continue
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := c.ReadMessage()
		if want := "last [" + cur.stamp + "]"; err != nil || string(got) != want {
			t.Errorf("session %d after the last reload: %q %v, want %q", s, got, err, want)
		}
	}
	st := e.r.Status()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("%d reloads (generation %d), reload took median %v max %v; responses %v", reloads, st.Generation, took[len(took)/2], took[len(took)-1], seen)
	if st.Generation != uint64(reloads+1) {
		t.Errorf("generation %d, want %d", st.Generation, reloads+1)
	}
	for _, k := range []string{"http A", "http B", "ws A", "ws B"} {
		if seen[k] == 0 {
			t.Errorf("no %s seen: the load did not overlap both versions (%v)", k, seen)
		}
	}
}

// TestReloadRefusesBrokenModules: a module that is not WebAssembly, one
// built for another ABI version, one that traps in configure, one whose
// sha256 does not match its pin, and a broken proxy.toml are each refused;
// the old generation keeps serving and the admin endpoint says why.
func TestReloadRefusesBrokenModules(t *testing.T) {
	m := buildModules(t)
	back := e2eBackend(t)
	good := version{headers: flavour(t, "headers"), redact: flavour(t, "redact"), stamp: "A"}
	e := startE2E(t, e2eConfig(back.URL, good, ""))
	garbage := filepath.Join(t.TempDir(), "garbage.wasm")
	os.WriteFile(garbage, []byte("\x00asm\x01\x00\x00\x00 this is not a module"), 0o600)

	with := func(headers string) string {
		v := good
		v.headers, v.stamp = headers, "B"
		return e2eConfig(back.URL, v, "")
	}
	cases := []struct {
		name, conf string
		want       []string
	}{
		{"bad bytes", with(garbage), []string{`plugin "headers"`, garbage, "compile"}},
		{"ABI version", with(m["abi_v2"]), []string{`plugin "headers"`, m["abi_v2"], "built for ABI v2, this host speaks v1"}},
		{"trap in configure", with(m["configure_trap"]), []string{`plugin "headers"`, m["configure_trap"], "sluice_configure", "unreachable"}},
		{"sha256 mismatch", strings.Replace(with(good.headers), "  [plugin.config.response]", `sha256 = "`+strings.Repeat("ab", 32)+`"`+"\n  [plugin.config.response]", 1),
			[]string{`plugin "headers"`, "but the config pins " + strings.Repeat("ab", 32)}},
		{"broken proxy.toml", strings.Replace(with(good.headers), "[[route]]", "[[route]]\nhots = \"x\"", 1), []string{e.path + ":12: route[0].hots: unknown key"}},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.write(tc.conf)
			code, st := e.postReload()
			if code != http.StatusUnprocessableEntity || st.LastResult != reload.Failed || st.Generation != 1 {
				t.Fatalf("got %d %+v", code, st)
			}
			for _, w := range tc.want {
				if !strings.Contains(st.LastError, w) {
					t.Errorf("last_error %q does not contain %q", st.LastError, w)
				}
			}
			resp, err := client.Get(e.url + "/api/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if v := resp.Header.Get("X-Version"); resp.StatusCode != 200 || v != "A" {
				t.Fatalf("the old generation stopped serving: %s X-Version %q", resp.Status, v)
			}
			resp, err = client.Get(e.admin + "/status")
			if err != nil {
				t.Fatal(err)
			}
			var got reload.Status
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if got.LastError != st.LastError {
				t.Errorf("GET /status last_error %q, want %q", got.LastError, st.LastError)
			}
		})
	}
	// Fixed: the next reload loads it.
	e.write(with(good.headers))
	if code, st := e.postReload(); code != 200 || st.Generation != 2 || st.LastError != "" {
		t.Fatalf("fixed config: %d %+v", code, st)
	}
}

// TestReloadLeak reloads 1,000 times between two configs (each reload
// builds and configures new instances and retires the old generation) and
// checks that heap and goroutines come back to where they were. It runs
// the full count with and without -race (about 25 s and 12 s on two busy
// cores); -short runs 50.
func TestReloadLeak(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 50
	}
	back := e2eBackend(t)
	a := version{headers: flavour(t, "headers"), redact: flavour(t, "redact"), stamp: "A"}
	b := a
	b.stamp = "B"
	e := startE2E(t, e2eConfig(back.URL, a, ""))
	client := &http.Client{Timeout: 10 * time.Second}
	get := func() string {
		resp, err := client.Get(e.url + "/api/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Version")
	}
	reload := func(v version) {
		e.write(e2eConfig(back.URL, v, ""))
		if st, err := e.r.Reload("test", false); err != nil || st.LastResult != reload.Loaded {
			t.Fatalf("reload: %v %+v", err, st)
		}
	}
	// Warm up: the compilation cache, both configs, the HTTP connections.
	for range 10 {
		reload(b)
		reload(a)
		get()
	}
	heap0, gr0 := settle()
	start := time.Now()
	for i := range n {
		v := a
		if i%2 == 0 {
			v = b
		}
		reload(v)
		if i%50 == 0 {
			if got := get(); got != v.stamp {
				t.Fatalf("reload %d: X-Version %q, want %q", i, got, v.stamp)
			}
		}
	}
	elapsed := time.Since(start)
	heap1, gr1 := settle()
	growth := int64(heap1) - int64(heap0)
	t.Logf("%d reloads in %v (%v each); heap %.1f MiB -> %.1f MiB (%+d KiB); goroutines %d -> %d",
		n, elapsed.Round(time.Millisecond), (elapsed / time.Duration(n)).Round(time.Microsecond),
		float64(heap0)/(1<<20), float64(heap1)/(1<<20), growth>>10, gr0, gr1)
	// A leaked generation holds at least its instances' memories (64 KiB
	// pages) and its pools: 1,000 of them would be hundreds of MiB.
	if growth > 8<<20 {
		t.Errorf("heap grew by %d KiB over %d reloads", growth>>10, n)
	}
	if gr1 > gr0+5 {
		t.Errorf("goroutines grew from %d to %d over %d reloads", gr0, gr1, n)
	}
}

// settle waits for retired generations to be released and returns the live
// heap after a GC and the number of goroutines.
func settle() (uint64, int) {
	var ms runtime.MemStats
	var g int
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		runtime.GC()
		g2 := runtime.NumGoroutine()
		if g2 == g {
			break
		}
		g = g2
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, runtime.NumGoroutine()
}

// TestServeReloadsOnSIGHUP runs the command's serve: with -watch=false a
// changed file does nothing until SIGHUP; with the watcher on, saving the
// file is enough.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	back := e2eBackend(t)
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%v", watch), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "proxy.toml")
			admin := freeAddr(t)
			conf := func(prefix string) string {
				return fmt.Sprintf("[admin]\nlisten = %q\n[server]\nlisten = \"127.0.0.1:0\"\n[[upstream]]\nname = \"app\"\ntargets = [%q]\n[[route]]\npath_prefix = %q\nupstream = \"app\"\n",
					admin, back.URL, prefix)
			}
			os.WriteFile(path, []byte(conf("/")), 0o600)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			go func() { done <- serve(ctx, path, watch, log) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			status := func() reload.Status {
				var st reload.Status
				resp, err := http.Get("http://" + admin + "/reload")
				if err != nil {
					return st
				}
				defer resp.Body.Close()
				json.NewDecoder(resp.Body).Decode(&st)
				return st
			}
			waitFor(t, "the admin listener", func() bool { return status().Generation == 1 })
			time.Sleep(100 * time.Millisecond) // the watcher is set up
			os.WriteFile(path, []byte(conf("/v2/")), 0o600)
			if !watch {
				time.Sleep(4 * reload.DefaultDebounce)
				if st := status(); st.Generation != 1 {
					t.Fatalf("-watch=false reloaded: %+v", st)
				}
				syscall.Kill(os.Getpid(), syscall.SIGHUP)
			}
			waitFor(t, "the reload", func() bool { return status().Generation == 2 })
			want := "watch"
			if !watch {
				want = "SIGHUP"
			}
			if st := status(); st.LastTrigger != want {
				t.Errorf("trigger %q, want %q", st.LastTrigger, want)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
