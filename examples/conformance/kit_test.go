package conformance

// The harness: which module each language built, a backend that reports
// what it received, the real proxy (host + plugins, as cmd/sluice wires
// them) in front of it, and the steps a scenario is made of.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/testkit"
	"github.com/sluiceproxy/sluice/plugins"
	"github.com/sluiceproxy/sluice/plugins/redisstore"
)

// lang is one way of building an example: its name in test output and the
// module file it produces in examples/<example>/.
type lang struct {
	name  string
	file  string // %s is the example's name
	build string // the command that builds it, for skip messages
}

var (
	langGo     = lang{"go", "%s.go.wasm", "examples/build.sh (standard Go)"}
	langTinyGo = lang{"tinygo", "%s.wasm", "scripts/install-tinygo.sh, then examples/build.sh"}
	langRust   = lang{"rust", "%s.rust.wasm", "examples/build-rust.sh (scripts/install-rust.sh installs Debian's Rust)"}
	langC      = lang{"c", "%s.c.wasm", "examples/build-c.sh (installs clang-19 and wasi-libc when missing)"}
)

// examples lists every example the kit covers and the languages it exists
// in, in test order.
var examples = []struct {
	name  string
	langs []lang
}{
	{"auth", []lang{langGo, langTinyGo, langRust}},
	{"headers", []lang{langGo, langTinyGo, langRust, langC}},
	{"redact", []lang{langGo, langTinyGo, langRust}},
	{"guard", []lang{langGo, langTinyGo, langRust}},
	{"noop", []lang{langGo, langTinyGo, langRust}},
	{"abitest", []lang{langGo, langTinyGo, langRust}},
	{"ratelimit", []lang{langGo, langTinyGo, langRust}},
}

// examplesDir is the examples module's root, seen from this package.
const examplesDir = ".."

// module is one built filter, or why there is none.
type module struct {
	lang  string
	path  string // absolute; "" when missing
	why   string // why it is missing
	stale bool   // older than a source file it is built from
}

// customLang is the language name of a module given in the environment.
func customLang() string {
	if l := os.Getenv("SLUICE_CONFORMANCE_LANG"); l != "" {
		return l
	}
	return "custom"
}

// modulesOf returns every build of an example the kit runs: the languages
// it exists in, plus a module named by SLUICE_CONFORMANCE_MODULE_<example>.
func modulesOf(example string, langs []lang) []module {
	var out []module
	for _, l := range langs {
		out = append(out, find(example, l))
	}
	if p := os.Getenv("SLUICE_CONFORMANCE_MODULE_" + example); p != "" {
		m := module{lang: customLang()}
		if abs, err := filepath.Abs(p); err != nil {
			m.why = err.Error()
		} else if _, err := os.Stat(abs); err != nil {
			m.why = fmt.Sprintf("SLUICE_CONFORMANCE_MODULE_%s: %v", example, err)
		} else {
			m.path = abs
		}
		out = append(out, m)
	}
	return out
}

func find(example string, l lang) module {
	m := module{lang: l.name}
	rel := filepath.Join(examplesDir, example, fmt.Sprintf(l.file, example))
	abs, err := filepath.Abs(rel)
	if err != nil {
		m.why = err.Error()
		return m
	}
	info, err := os.Stat(abs)
	if err != nil {
		m.why = fmt.Sprintf("examples/%s/%s is not built: run %s", example, fmt.Sprintf(l.file, example), l.build)
		return m
	}
	if l == langTinyGo {
		// Without TinyGo, build.sh copies the Go build to <name>.wasm so
		// proxy.toml keeps working; that copy is not a TinyGo build.
		a, errA := os.ReadFile(abs)
		b, errB := os.ReadFile(filepath.Join(examplesDir, example, example+".go.wasm"))
		if errA == nil && errB == nil && bytes.Equal(a, b) {
			m.why = fmt.Sprintf("examples/%s/%s.wasm is a copy of the Go build (TinyGo was not installed): run %s", example, example, l.build)
			return m
		}
	}
	m.path = abs
	m.stale = info.ModTime().Before(newestSource(example, l))
	return m
}

// newestSource is the modification time of the newest source file a
// language's build of example is made from.
func newestSource(example string, l lang) time.Time {
	var dirs []string
	var exts []string
	switch l {
	case langGo, langTinyGo:
		dirs = []string{filepath.Join(examplesDir, example), filepath.Join(examplesDir, "internal"), filepath.Join(examplesDir, "..", "sdk", "go")}
		exts = []string{".go"}
	case langRust:
		dirs = []string{filepath.Join(examplesDir, example, "rust", "src"), filepath.Join(examplesDir, "..", "sdk", "rust", "src")}
		exts = []string{".rs"}
	case langC:
		dirs = []string{filepath.Join(examplesDir, example, "c")}
		exts = []string{".c", ".h"}
	}
	var newest time.Time
	for i, d := range dirs {
		filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if e.IsDir() {
				// Only the example's own directory, not its rust/ or c/.
				if i == 0 && (l == langGo || l == langTinyGo) && path != d {
					return filepath.SkipDir
				}
				if e.Name() == "target" {
					return filepath.SkipDir
				}
				return nil
			}
			for _, x := range exts {
				if strings.HasSuffix(path, x) && !strings.HasSuffix(path, "_test.go") {
					if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
						newest = info.ModTime()
					}
				}
			}
			return nil
		})
	}
	return newest
}

// skipped records the languages skipped in this run, for the summary that
// TestMain prints.
var skipped struct {
	sync.Mutex
	why map[string]string // "example/lang" -> reason
}

// missing skips the test (or fails it under CI) for a module that is not
// built.
func missing(t *testing.T, example string, m module) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s [%s]: module missing and CI is set: %s", example, m.lang, m.why)
	}
	skipped.Lock()
	if skipped.why == nil {
		skipped.why = map[string]string{}
	}
	skipped.why[example+"/"+m.lang] = m.why
	skipped.Unlock()
	t.Skipf("%s [%s] skipped: %s", example, m.lang, m.why)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(skipped.why) > 0 {
		keys := make([]string, 0, len(skipped.why))
		for k := range skipped.why {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Println("conformance: languages skipped (set CI=1 to make this a failure):")
		for _, k := range keys {
			fmt.Printf("  %-20s %s\n", k, skipped.why[k])
		}
	}
	if loader != nil {
		loader.Close()
	}
	os.Exit(code)
}

// --- the backend ---

// seen is what the backend received, as it reports it: the JSON body of
// every HTTP response, and the record of every WebSocket handshake.
type seen struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
}

// backend answers HTTP requests with what it saw (as JSON) and fixed
// headers for filters to change, and echoes WebSocket messages (it is a
// testkit.WSBackend, which answers a close frame with the same code).
type backend struct {
	addr string

	mu         sync.Mutex
	handshakes map[string]seen // by X-Kit-Dial, a header the kit sends on every dial
	arrived    chan struct{}
}

func startBackend(t testing.TB) *backend {
	b := &backend{handshakes: map[string]seen{}, arrived: make(chan struct{}, 1)}
	ws := testkit.NewWSBackendWith(t, testkit.WSBackendOptions{
		Plain: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Server", "backend/1.0")
			h.Set("X-Backend", "yes")
			h.Set("X-Backend-Add", "1")
			h.Set("X-Backend-Remove", "gone")
			json.NewEncoder(w).Encode(b.saw(r))
		}),
		OnUpgrade: func(r *http.Request) {
			b.mu.Lock()
			b.handshakes[r.Header.Get("X-Kit-Dial")] = b.saw(r)
			b.mu.Unlock()
			select {
			case b.arrived <- struct{}{}:
			default:
			}
		},
	})
	b.addr = ws.Server.Listener.Addr().String()
	return b
}

// saw is what the backend reports of r.
func (b *backend) saw(r *http.Request) seen {
	body, _ := io.ReadAll(r.Body)
	return seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)}
}

// handshake waits for the handshake of the dial tagged id.
func (b *backend) handshake(id string) (seen, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		s, ok := b.handshakes[id]
		delete(b.handshakes, id)
		b.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return s, ok
		}
		select {
		case <-b.arrived:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// --- the proxy ---

// loader is one plugin loader for the whole run, as in the proxy: a module
// compiles once for all the scenarios of its example (the loader keeps it
// while a proxy's plugin set uses it), which matters most for 2 MB Go
// modules under the race detector.
var (
	loader     *plugins.Loader
	loaderOnce sync.Once
	logs       = &logBuffer{}
)

// logBuffer keeps every record the proxy and its filters log, so scenarios
// can check what a filter logged.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// size is the length of the log so far: a step looks for its lines after it.
func (l *logBuffer) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *logBuffer) lines(from int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(l.b.String()[from:], "\n")
}

var logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

// redisEnv names the environment variable that puts the kit's shared store
// in the Redis at that address instead of memory (TestConformanceRedis sets
// it for a run of the shared-state scenarios).
const redisEnv = "SLUICE_CONFORMANCE_REDIS"

func theLoader() *plugins.Loader {
	loaderOnce.Do(func() {
		opts := plugins.LoaderOptions{Logger: logger}
		if addr := os.Getenv(redisEnv); addr != "" {
			// The kit checks the store's semantics, not its latency
			// (plugins/redisstore tests the deadlines): generous call
			// deadlines keep a loaded machine running the race detector
			// from failing a scenario as a slow store would.
			cfg, err := config.Parse([]byte(fmt.Sprintf("[shared]\nbackend = \"redis\"\naddress = %q\ncall_timeout = \"2s\"\nhook_budget = \"5s\"\n", addr)), redisEnv)
			if err != nil {
				panic(err)
			}
			s, err := redisstore.New(cfg.Shared, logger)
			if err != nil {
				panic(err)
			}
			opts.Shared = s // lives as long as the test binary
		}
		loader = plugins.NewLoader(opts)
	})
	return loader
}

// instanceName is the name of a scenario's route and plugin in one
// language's proxy, and its path prefix: "<scenario>-<lang>". Each language
// has its own, so shared state (namespaced per plugin) starts empty for each.
func instanceName(s *scenario, lang string) string { return s.name + "-" + lang }

// pluginTOML is the [[plugin]] of a scenario, with its extra keys and config.
func pluginTOML(s *scenario, name, modulePath string) string {
	return fmt.Sprintf("\n[[plugin]]\nname = %q\nmodule = %q\ntimeout = \"2s\"\n%s\n%s\n",
		name, filepath.ToSlash(modulePath), s.plugin, expand(s.config, name))
}

// startProxy runs the real proxy with one route and one plugin per scenario
// (named instanceName, path prefix /<name>/) and returns its base URL and
// the function that stops it.
func startProxy(backendAddr string, m module, scenarios []*scenario) (string, func(), error) {
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = \"127.0.0.1:0\"\n\n[[upstream]]\nname = \"backend\"\ntargets = [\"http://%s\"]\n", backendAddr)
	for _, s := range scenarios {
		n := instanceName(s, m.lang)
		fmt.Fprintf(&b, "\n[[route]]\nname = %q\npath_prefix = \"/%s/\"\nupstream = \"backend\"\nplugins = [%q]\n", n, n, n)
	}
	for _, s := range scenarios {
		b.WriteString(pluginTOML(s, instanceName(s, m.lang), m.path))
	}
	var set *plugins.Set
	px, err := testkit.Launch(b.String(), func(_ string, cfg *config.Config) (testkit.Server, error) {
		var err error
		if set, err = theLoader().Load(context.Background(), cfg); err != nil {
			return nil, err
		}
		return host.New(cfg, host.Chains{Routes: set.Chains()}, host.Options{Logger: logger})
	})
	if err != nil {
		if set != nil {
			set.Close()
		}
		return "", nil, err
	}
	stop := func() {
		px.Stop()
		set.Close()
	}
	return px.URL, stop, nil
}

// proxies are the running proxies of one example, one per module, started
// ahead of time (see startAll).
type proxies struct {
	wg    sync.WaitGroup // one per proxy still starting
	bases []string       // by module; "" for a missing module
	stops []func()
	errs  []error
	once  sync.Once
}

// wait waits until every proxy of the example started or failed.
func (p *proxies) wait() { p.wg.Wait() }

// stop stops every proxy of the example; later calls do nothing.
func (p *proxies) stop() {
	p.wait()
	p.once.Do(func() {
		for _, stop := range p.stops {
			if stop != nil {
				stop()
			}
		}
	})
}

// startAll starts the proxies of each selected example in the background,
// two at a time, in test order: loading a 2 MB Go module takes seconds
// (most of the kit's time under the race detector), so the next examples
// load while the current one's scenarios run.
func startAll(backendAddr string, mods map[string][]module, live map[string][]*scenario) map[string]*proxies {
	type job struct {
		p *proxies
		i int
		m module
		s []*scenario
	}
	out := map[string]*proxies{}
	var jobs []job
	for _, ex := range examples {
		if !selected(ex.name) {
			continue
		}
		ms := mods[ex.name]
		p := &proxies{bases: make([]string, len(ms)), stops: make([]func(), len(ms)), errs: make([]error, len(ms))}
		out[ex.name] = p
		for i, m := range ms {
			if m.path != "" {
				p.wg.Add(1)
				jobs = append(jobs, job{p, i, m, live[ex.name]})
			}
		}
	}
	sem := make(chan struct{}, 2)
	go func() {
		for _, j := range jobs {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				defer j.p.wg.Done()
				j.p.bases[j.i], j.p.stops[j.i], j.p.errs[j.i] = startProxy(backendAddr, j.m, j.s)
			}()
		}
	}()
	return out
}

// selected reports whether -run may select TestConformance/<example>, so
// a focused run does not load every other example.
func selected(example string) bool {
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	parts := strings.Split(f.Value.String(), "/")
	if len(parts) < 2 {
		return true
	}
	re, err := regexp.Compile(parts[1])
	return err != nil || re.MatchString(example)
}

// loadError loads a scenario's plugin alone and returns the loader's error.
func loadError(m module, s *scenario) error {
	n := instanceName(s, m.lang)
	text := "[[upstream]]\nname = \"backend\"\ntargets = [\"http://127.0.0.1:9\"]\n" +
		fmt.Sprintf("\n[[route]]\nname = %q\npath_prefix = \"/\"\nupstream = \"backend\"\nplugins = [%q]\n", n, n) +
		pluginTOML(s, n, m.path)
	cfg, err := config.Parse([]byte(text), "conformance.toml")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	set, err := theLoader().Load(context.Background(), cfg)
	if err == nil {
		set.Close()
	}
	return err
}

// --- expectations ---

// absent, as an expected header value, means the header must not be there.
const absent = "<header absent>"

// Expected strings are compared exactly, except:
//   - "re:<regexp>" matches a regular expression (for addresses);
//   - "{now}" matches a wall-clock time in Unix nanoseconds within a minute;
//   - "{s}" inside any expected string stands for the scenario's
//     instanceName (its route, its plugin and its path prefix).
//
// Expected header values are the header's values joined with "|".
func match(want, got string) bool {
	if want == "{now}" {
		// A wall-clock reading in nanoseconds, close to the kit's clock.
		ns, err := strconv.ParseInt(got, 10, 64)
		return err == nil && time.Since(time.Unix(0, ns)).Abs() < time.Minute
	}
	if re, ok := strings.CutPrefix(want, "re:"); ok {
		return regexp.MustCompile(re).MatchString(got)
	}
	return want == got
}

// expand replaces {s} with the scenario's instanceName.
func expand(s, name string) string { return strings.ReplaceAll(s, "{s}", name) }

// diffs collects the differences of one step.
type diffs []string

func (d *diffs) add(format string, args ...any) { *d = append(*d, fmt.Sprintf(format, args...)) }

func (d *diffs) compare(what, want, got, name string) {
	want = expand(want, name)
	if !match(want, got) {
		*d = append(*d, fmt.Sprintf("%s: expected %q, got %q", what, want, got))
	}
}

func (d *diffs) headers(what string, want map[string]string, got http.Header, name string) {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := want[k]
		vs, ok := got[http.CanonicalHeaderKey(k)]
		switch {
		case w == absent && ok:
			d.add("%s %s: expected absent, got %q", what, k, strings.Join(vs, "|"))
		case w == absent:
		case !ok:
			d.add("%s %s: expected %q, got absent", what, k, expand(w, name))
		default:
			d.compare(what+" "+k, w, strings.Join(vs, "|"), name)
		}
	}
}

// upstream is what the backend must have received; empty fields are not
// checked.
type upstream struct {
	method, path, query, body string
	header                    map[string]string
}

func (d *diffs) upstream(want *upstream, got seen, name string) {
	if want == nil {
		return
	}
	if want.method != "" {
		d.compare("upstream method", want.method, got.Method, name)
	}
	if want.path != "" {
		d.compare("upstream path", want.path, got.Path, name)
	}
	if want.query != "" {
		d.compare("upstream query", want.query, got.Query, name)
	}
	if want.body != "" {
		d.compare("upstream body", want.body, got.Body, name)
	}
	d.headers("upstream header", want.header, got.Header, name)
}

// --- steps ---

// env is what a step runs against: one proxy in front of one backend, for
// one scenario in one language.
type env struct {
	t       *testing.T
	base    string // the proxy's base URL
	backend *backend
	name    string // the scenario's instanceName
	dials   *int   // counter for X-Kit-Dial
}

// step is one thing a scenario does and checks. run returns the
// differences from what was expected; an error is a failure of the kit or
// the network, not of the filter.
type step interface {
	describe() string
	run(e *env) (diffs, error)
}

// request sends one HTTP request through the proxy.
type request struct {
	method string // GET when empty
	path   string // below the scenario's prefix: "x?a=1" is /<scenario>/x?a=1
	header http.Header
	// headerAt, when set, makes the headers when the step runs (for tokens
	// that must be fresh however long the kit took to get there).
	headerAt func() http.Header
	body     string

	want reply
}

// reply is what a request must get back.
type reply struct {
	status  int               // 200 when 0
	header  map[string]string // response headers
	body    *string           // the body, exactly
	bodyHas []string          // substrings the body must contain
	up      *upstream         // what the upstream must have received
	logged  [][]string        // each: substrings one log line must contain
}

func (r request) describe() string {
	m := r.method
	if m == "" {
		m = "GET"
	}
	return m + " /{s}/" + r.path
}

func (r request) run(e *env) (diffs, error) {
	m := r.method
	if m == "" {
		m = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(m, e.base+"/"+e.name+"/"+r.path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.headerAt != nil {
		for k, v := range r.headerAt() {
			req.Header[k] = v
		}
	}
	logFrom := logs.size()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var d diffs
	status := r.want.status
	if status == 0 {
		status = http.StatusOK
	}
	if resp.StatusCode != status {
		d.add("status: expected %d, got %d (body %.200q)", status, resp.StatusCode, got)
	}
	// Resp-Body-Len is the length of the body the upstream sent, which
	// this step only knows now.
	hdr := r.want.header
	if v, ok := hdr["X-Abi-Resp-Body-Len"]; ok && v == "{len}" {
		hdr = clone(hdr)
		hdr["X-Abi-Resp-Body-Len"] = strconv.Itoa(len(got))
	}
	d.headers("header", hdr, resp.Header, e.name)
	if r.want.body != nil {
		d.compare("body", *r.want.body, string(got), e.name)
	}
	for _, s := range r.want.bodyHas {
		if s = expand(s, e.name); !strings.Contains(string(got), s) {
			d.add("body: expected it to contain %q, got %.300q", s, got)
		}
	}
	if r.want.up != nil {
		var s seen
		if err := json.Unmarshal(got, &s); err != nil {
			d.add("upstream: the response is not the backend's report (%v): %.200q", err, got)
		} else {
			d.upstream(r.want.up, s, e.name)
		}
	}
	for _, want := range r.want.logged {
		if !logged(want, logFrom, e.name) {
			d.add("log: expected a line with %q", want)
		}
	}
	return d, nil
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// logged reports whether one log line written after offset from contains
// every string of want.
func logged(want []string, from int, name string) bool {
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, line := range logs.lines(from) {
			ok := true
			for _, w := range want {
				if !strings.Contains(line, expand(w, name)) {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// pause waits, for TTLs and token buckets.
type pause time.Duration

func (p pause) describe() string { return "wait " + time.Duration(p).String() }
func (p pause) run(*env) (diffs, error) {
	time.Sleep(time.Duration(p))
	return nil, nil
}

// eventually repeats a step until it passes (for effects that happen after
// a connection closed), for up to five seconds.
type eventually struct{ step }

func (ev eventually) describe() string { return "eventually " + ev.step.describe() }
func (ev eventually) run(e *env) (diffs, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := ev.step.run(e)
		if (err == nil && len(d) == 0) || time.Now().After(deadline) {
			return d, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ws opens a WebSocket through the proxy and exchanges messages.
type ws struct {
	path      string // below the scenario's prefix
	header    http.Header
	protocols []string

	refused  int               // expected handshake status when the upgrade must fail
	protocol string            // expected subprotocol the client gets
	up       *upstream         // what the upstream's handshake must have carried
	respHdr  map[string]string // expected handshake response headers
	msgs     []msg
}

// msg is one message action: send, expect to receive, or expect a close.
type msg struct {
	send    bool
	binary  bool
	payload string
	close   int // expect a close frame with this code (and reason, when set)
	reason  string
	wait    time.Duration // pause before this action
}

func sendText(p string) msg   { return msg{send: true, payload: p} }
func sendBinary(p string) msg { return msg{send: true, binary: true, payload: p} }
func recvText(p string) msg   { return msg{payload: p} }
func recvBinary(p string) msg { return msg{binary: true, payload: p} }
func recvClose(code int) msg  { return msg{close: code} }
func closeWith(code int, reason string) msg {
	return msg{close: code, reason: reason}
}

func (w ws) describe() string { return "WebSocket /{s}/" + w.path }

func (w ws) run(e *env) (diffs, error) {
	*e.dials++
	id := strconv.Itoa(*e.dials)
	h := http.Header{"X-Kit-Dial": {id}}
	for k, v := range w.header {
		h[k] = v
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: w.protocols}
	url := "ws" + strings.TrimPrefix(e.base, "http") + "/" + e.name + "/" + w.path
	c, resp, err := d.Dial(url, h)
	var out diffs
	if w.refused != 0 {
		switch {
		case err == nil:
			c.Close()
			out.add("upgrade: expected status %d, the upgrade succeeded", w.refused)
		case resp == nil:
			return nil, err
		case resp.StatusCode != w.refused:
			out.add("upgrade: expected status %d, got %d", w.refused, resp.StatusCode)
		}
		if resp != nil {
			out.headers("handshake header", w.respHdr, resp.Header, e.name)
		}
		return out, nil
	}
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		out.add("upgrade: expected success, got %v (status %d)", err, status)
		return out, nil
	}
	defer c.Close()
	if w.protocol != "" || len(w.protocols) > 0 {
		out.compare("subprotocol", w.protocol, c.Subprotocol(), e.name)
	}
	if w.up != nil {
		s, ok := e.backend.handshake(id)
		if !ok {
			out.add("upstream handshake: the backend saw none")
		} else {
			out.upstream(w.up, s, e.name)
		}
	}
	for i, m := range w.msgs {
		if m.wait > 0 {
			time.Sleep(m.wait)
		}
		kind := websocket.TextMessage
		if m.binary {
			kind = websocket.BinaryMessage
		}
		if m.send {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteMessage(kind, []byte(expand(m.payload, e.name))); err != nil {
				out.add("message %d: sending %q: %v", i, m.payload, err)
				return out, nil
			}
			continue
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, p, err := c.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case m.close != 0 && errors.As(err, &ce):
			if ce.Code != m.close || (m.reason != "" && ce.Text != m.reason) {
				out.add("message %d: expected close %d %q, got close %d %q", i, m.close, m.reason, ce.Code, ce.Text)
			}
			return out, nil
		case m.close != 0 && err == nil:
			out.add("message %d: expected close %d, got %s message %q", i, m.close, kindName(k), p)
			return out, nil
		case err != nil:
			out.add("message %d: expected %s %q, got %v", i, kindName(kind), expand(m.payload, e.name), err)
			return out, nil
		case k != kind:
			out.add("message %d: expected %s %q, got %s %q", i, kindName(kind), expand(m.payload, e.name), kindName(k), p)
		default:
			out.compare(fmt.Sprintf("message %d", i), m.payload, string(p), e.name)
		}
	}
	// A clean close, so the filter's on_close runs now.
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return out, nil
}

func kindName(k int) string {
	if k == websocket.BinaryMessage {
		return "binary"
	}
	return "text"
}
