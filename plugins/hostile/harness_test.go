package hostile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// The harness: build once, then per case write a config, ask `sluice check`
// for the bound, run the proxy under a memory cap, attack, probe, sample.

var (
	// workDir holds the sluice binary and the modules built from testdata.
	workDir string
	// skipReason, when set, skips every case (a tool is missing).
	skipReason string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-hostile-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
	workDir = dir
	if err := prepare(dir); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "hostile:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		skipReason = err.Error()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// prepare builds the proxy binary and every testdata/*.wat module into dir.
func prepare(dir string) error {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		return errors.New("wat2wasm not found: install wabt (make setup, or apt-get install wabt)")
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "sluice"), "github.com/sluiceproxy/sluice/cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build cmd/sluice: %v\n%s", err, out)
	}
	wats, err := filepath.Glob("testdata/*.wat")
	if err != nil || len(wats) == 0 {
		return fmt.Errorf("no modules in testdata: %v", err)
	}
	for _, wat := range wats {
		out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(wat), ".wat")+".wasm")
		if b, err := exec.Command("wat2wasm", wat, "-o", out).CombinedOutput(); err != nil {
			return fmt.Errorf("wat2wasm %s: %v\n%s", wat, err, b)
		}
	}
	return nil
}

func module(name string) string { return filepath.Join(workDir, name+".wasm") }

// attackCase is one class of hostile guest.
type attackCase struct {
	name string
	// module is the hostile module, testdata/<module>.wat.
	module string
	// plugin holds extra TOML lines for the hostile [[plugin]]; server
	// extra lines for [server]; benign the lines of the benign [[plugin]]
	// (default: benignPlugin).
	plugin, server, benign string
	// workers attack at once (default 4) for duration (default 2s).
	workers  int
	duration time.Duration
	// attack makes one attack on the hostile route and returns nil when the
	// proxy answered with the documented failure.
	attack func(e *env) error
	// log, when set, is a regular expression the proxy's log must match:
	// the failure names its cause. (The proxy logs one failure a second per
	// plugin, so a case with variants lists each variant's message.)
	log string
	// check, when set, checks more of what the run measured.
	check func(t *testing.T, r *result)
}

// env is a running proxy, as attacks and probes see it.
type env struct {
	url    string // http://127.0.0.1:port
	ws     string // ws://127.0.0.1:port
	client *http.Client
}

// benignPlugin is the benign plugin's setting unless a case sets its own: a
// 100ms hook deadline. The machine the suite runs on may be shared, and a
// 10ms deadline in wall-clock time is missed by being descheduled alone;
// the cases about deadlines set the benign plugin's deadline themselves.
const benignPlugin = `timeout = "100ms"`

// benignDeadline is how long a probe of the benign route may take. Its
// filter's own hook deadline is the default 10ms; the rest is this loaded
// two-core machine's scheduling and the proxy's own work.
const benignDeadline = time.Second

// result is what one run measured.
type result struct {
	bound       uint64 // what sluice check printed
	baseRSS     uint64 // the proxy without filters under the same traffic
	peakRSS     uint64
	attacks     int64
	attackErrs  []string // attacks that did not get the documented failure (first few)
	attackFails int64
	probes      int64
	probeErrs   []string
	maxProbe    time.Duration
	log         *logSink
	capHow      string
	exited      error // non-nil when the proxy died
}

func (r *result) String() string {
	return fmt.Sprintf("peak RSS %s (proxy alone %s, filters' bound %s), %d attacks, %d benign probes (slowest %v), cap: %s",
		mib(r.peakRSS), mib(r.baseRSS), mib(r.bound), r.attacks, r.probes, r.maxProbe.Round(time.Millisecond), r.capHow)
}

func mib(n uint64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

// run runs one case and checks what every case must hold.
func run(t *testing.T, c attackCase) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	backend := newBackend(t)
	base := baseline(t, backend)
	cfg := writeConfig(t, backend, c, true)
	bound := checkBound(t, cfg)
	r := attackRun(t, cfg, c, bound+base+capHeadroom)
	r.bound, r.baseRSS = bound, base
	t.Logf("%s: %s", c.name, r)
	if r.exited != nil {
		t.Fatalf("the proxy died: %v\nlog:\n%s", r.exited, r.log.head())
	}
	if r.attackFails > 0 {
		t.Errorf("%d of %d attacks did not get the documented failure, e.g.:\n%s", r.attackFails, r.attacks, strings.Join(r.attackErrs, "\n"))
	}
	if r.attacks == 0 {
		t.Errorf("no attack completed")
	}
	if len(r.probeErrs) > 0 {
		t.Errorf("the benign route failed %d of %d probes, e.g.:\n%s\nthe proxy's log about it:\n%s", len(r.probeErrs), r.probes,
			strings.Join(r.probeErrs[:min(5, len(r.probeErrs))], "\n"), grepLines(r.log.head(), "benign"))
	}
	if r.probes < 10 {
		t.Errorf("only %d benign probes ran", r.probes)
	}
	if r.peakRSS > base+bound {
		t.Errorf("peak RSS %s is over the proxy's own %s plus the filters' bound %s", mib(r.peakRSS), mib(base), mib(bound))
	}
	if c.log != "" && !regexp.MustCompile(c.log).MatchString(r.log.head()) {
		t.Errorf("the proxy's log does not match %q:\n%s", c.log, r.log.head())
	}
	if c.check != nil {
		c.check(t, r)
	}
}

// capHeadroom is what the memory cap allows above the proxy's own footprint
// plus the filters' bound: the cap is a backstop that keeps a broken bound
// from hurting the machine, the RSS assertion is the test.
const capHeadroom = 256 << 20

// --- the backend ---

// newBackend starts the upstream both routes proxy to: "ok" for a plain
// request, ?bytes=N for a body of N bytes, and a WebSocket echo.
func newBackend(t *testing.T) *httptest.Server {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			testkit.Echo(c)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if n, err := strconv.Atoi(r.URL.Query().Get("bytes")); err == nil && n > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for n > 0 {
				k := min(n, len(chunk))
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// --- config and bound ---

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeConfig writes the proxy.toml of a case: the hostile route filtered
// by the case's module, the benign route by testdata/benign.wat. Without
// filters (withFilters false) both routes are plain, for the baseline.
func writeConfig(t *testing.T, backend *httptest.Server, c attackCase, withFilters bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = %q\n%s\n", freePort(t), c.server)
	fmt.Fprintf(&b, "[[upstream]]\nname = \"app\"\ntargets = [%q]\n\n", backend.URL)
	hostile, benign := "", ""
	if withFilters {
		hostile, benign = `plugins = ["hostile"]`, `plugins = ["benign"]`
	}
	fmt.Fprintf(&b, "[[route]]\npath_prefix = \"/hostile/\"\nupstream = \"app\"\n%s\n\n", hostile)
	fmt.Fprintf(&b, "[[route]]\npath_prefix = \"/benign/\"\nupstream = \"app\"\n%s\n\n", benign)
	if withFilters {
		fmt.Fprintf(&b, "[[plugin]]\nname = \"hostile\"\nmodule = %q\n%s\n\n", module(c.module), c.plugin)
		benign := c.benign
		if benign == "" {
			benign = benignPlugin
		}
		fmt.Fprintf(&b, "[[plugin]]\nname = \"benign\"\nmodule = %q\n%s\n", module("benign"), benign)
	}
	path := filepath.Join(t.TempDir(), "proxy.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var boundRE = regexp.MustCompile(`filters hold at most (\d+) bytes`)

// checkBound runs `sluice check` and returns the worst-case memory it
// printed for the filters.
func checkBound(t *testing.T, cfg string) uint64 {
	out, err := exec.Command(filepath.Join(workDir, "sluice"), "check", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice check: %v\n%s", err, out)
	}
	m := boundRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("sluice check printed no memory bound:\n%s", out)
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Logf("sluice check: %s", line)
	}
	return n
}

var (
	baseOnce sync.Once
	baseRSS  uint64
)

// baseline is the proxy's own peak RSS, without filters, under the traffic
// of a case (plain GETs on both routes), measured once per test binary.
func baseline(t *testing.T, backend *httptest.Server) uint64 {
	baseOnce.Do(func() {
		c := attackCase{name: "baseline", attack: func(e *env) error {
			return wantStatus(e, "/hostile/x", 200)
		}}
		cfg := writeConfig(t, backend, c, false)
		r := attackRun(t, cfg, c, 1<<30)
		if r.exited != nil {
			t.Fatalf("the proxy without filters died: %v\n%s", r.exited, r.log.head())
		}
		baseRSS = r.peakRSS
		t.Logf("baseline without filters: peak RSS %s, %d requests, %d probes", mib(r.peakRSS), r.attacks, r.probes)
	})
	if baseRSS == 0 {
		t.Fatal("no baseline")
	}
	return baseRSS
}

// --- running the proxy ---

// attackRun starts the proxy under a memory cap of capBytes, attacks the
// hostile route while probing the benign one and sampling RSS, and stops it.
func attackRun(t *testing.T, cfg string, c attackCase, capBytes uint64) *result {
	r := &result{log: &logSink{}}
	addr := listenAddr(t, cfg)
	cmd, capHow, release := capped(t, capBytes, filepath.Join(workDir, "sluice"), "-config", cfg, "-watch=false", "-log-level", "warn")
	r.capHow = capHow
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sluice: %v", err)
	}
	release(cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)

	e := &env{
		url: "http://" + addr,
		ws:  "ws://" + addr,
		client: &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		},
	}
	if err := waitReady(e, exited); err != nil {
		r.exited = err
		return r
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var peak atomic.Uint64
	pid := cmd.Process.Pid
	wg.Add(1)
	go func() { // sampler
		defer wg.Done()
		for ctx.Err() == nil {
			if n := rss(pid); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var mu sync.Mutex
	wg.Add(1)
	go func() { // benign prober
		defer wg.Done()
		for ctx.Err() == nil {
			start := time.Now()
			err := wantStatus(e, "/benign/probe", 200)
			d := time.Since(start)
			if err == nil && d > benignDeadline {
				err = fmt.Errorf("took %v, over %v", d, benignDeadline)
			}
			mu.Lock()
			r.probes++
			r.maxProbe = max(r.maxProbe, d)
			if err != nil {
				r.probeErrs = append(r.probeErrs, err.Error())
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	workers, duration := c.workers, c.duration
	if workers == 0 {
		workers = 4
	}
	if duration == 0 {
		duration = 2 * time.Second
	}
	var attackers sync.WaitGroup
	deadline := time.Now().Add(duration)
	for range workers {
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			for time.Now().Before(deadline) {
				select {
				case <-exited:
					return
				default:
				}
				err := c.attack(e)
				mu.Lock()
				r.attacks++
				if err != nil {
					r.attackFails++
					if len(r.attackErrs) < 5 {
						r.attackErrs = append(r.attackErrs, err.Error())
					}
				}
				mu.Unlock()
			}
		}()
	}
	attackers.Wait()
	// The proxy must still serve once the attack is over.
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	r.peakRSS = peak.Load()
	select {
	case err := <-exited:
		r.exited = fmt.Errorf("exited during the attack: %v", err)
		stopped = true
		return r
	default:
	}
	if err := wantStatus(e, "/benign/after", 200); err != nil {
		r.probeErrs = append(r.probeErrs, "after the attack: "+err.Error())
	}
	stop()
	return r
}

// listenAddr reads server.listen back from the config.
func listenAddr(t *testing.T, cfg string) string {
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`listen = "([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no listen address in %s", b)
	}
	return string(m[1])
}

func waitReady(e *env, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited at start: %v", err)
		default:
		}
		if wantStatus(e, "/benign/ready", 200) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("not ready within 15s")
}

// rss returns the resident set size of pid from /proc, 0 when gone.
func rss(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// --- the memory cap ---

// capped returns a command that runs bin under a memory cap of limit bytes,
// how the cap is applied, and a function to call with the process's pid
// once it started.
//
// A cgroup v2 memory.max is the better cap (it counts what the process
// really uses, and the kernel reclaims or kills inside the group only), so
// it is used when this process sits in a cgroup v2 hierarchy whose memory
// controller it may delegate to a child. Otherwise the cap is RLIMIT_AS (set
// by the shell's ulimit before it execs the proxy, so the pid stays the
// same) together with GOMEMLIMIT, which makes the Go runtime collect before
// its heap nears the cap rather than fail an allocation.
func capped(t *testing.T, limit uint64, bin string, args ...string) (*exec.Cmd, string, func(pid int)) {
	if dir, ok := cgroupChild(t, limit); ok {
		cmd := exec.Command(bin, args...)
		return cmd, "cgroup v2 memory.max " + mib(limit), func(pid int) {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
				t.Errorf("move the proxy into its cgroup: %v", err)
			}
		}
	}
	// The address space holds more than the resident memory: the Go
	// runtime's reservations, thread stacks and wazero's code mappings.
	as := limit + addressSpaceSlack
	script := fmt.Sprintf(`ulimit -v %d && exec "$0" "$@"`, as>>10)
	cmd := exec.Command("sh", append([]string{"-c", script, bin}, args...)...)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT="+strconv.FormatUint(limit, 10))
	return cmd, fmt.Sprintf("RLIMIT_AS %s + GOMEMLIMIT %s", mib(as), mib(limit)), func(int) {}
}

// addressSpaceSlack is the virtual memory a proxy maps beyond what it keeps
// resident (measured: about 1.3GiB of reservations at start on linux/amd64).
const addressSpaceSlack = 4 << 30

// cgroupChild creates a cgroup v2 child of this process's cgroup with
// memory.max set, when the hierarchy allows it; it is removed at cleanup.
func cgroupChild(t *testing.T, limit uint64) (string, bool) {
	const root = "/sys/fs/cgroup"
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil || st.Type != 0x63677270 { // CGROUP2_SUPER_MAGIC
		return "", false
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	var rel string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if r, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			rel = r
		}
	}
	parent := filepath.Join(root, rel)
	ctl, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil || !slices.Contains(strings.Fields(string(ctl)), "memory") {
		return "", false
	}
	dir := filepath.Join(parent, fmt.Sprintf("sluice-hostile-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", false
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(strconv.FormatUint(limit, 10)), 0o644); err != nil {
		os.Remove(dir)
		return "", false
	}
	t.Cleanup(func() {
		for range 50 {
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir, true
}

// --- the proxy's log ---

// logSink keeps the head of the proxy's log (a flood must not fill the
// test's memory) and counts what it was given.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	bytes int64
	lines int64
}

const logHead = 256 << 10

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes += int64(len(p))
	l.lines += int64(bytes.Count(p, []byte("\n")))
	if room := logHead - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func (l *logSink) head() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// --- attacks ---

// wantStatus sends GET path and checks the status.
func wantStatus(e *env, path string, status int) error {
	resp, err := e.client.Get(e.url + path)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, status)
	}
	return nil
}

// wantBody sends GET path and checks the status and the body's length.
func wantBody(e *env, path string, status int, n int64) error {
	resp, err := e.client.Get(e.url + path)
	if err != nil {
		return err
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: reading the body: %v", path, err)
	case resp.StatusCode != status:
		return fmt.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, status)
	case got != n:
		return fmt.Errorf("GET %s: %d bytes of body, want %d", path, got, n)
	}
	return nil
}

// variants returns a function that cycles through vs, one per call, so an
// attack tries every variant of its class.
func variants(vs ...string) func() string {
	var n atomic.Uint64
	return func() string { return vs[(n.Add(1)-1)%uint64(len(vs))] }
}

// wantClose opens a WebSocket on path, sends msg as a text message and
// checks that the proxy closes the session with code.
func wantClose(e *env, path string, msg []byte, code int) error {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(e.ws+path, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: %v (status %d)", path, err, resp.StatusCode)
		}
		return fmt.Errorf("dial %s: %v", path, err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("write: %v", err)
	}
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != code {
				return fmt.Errorf("closed with %d %q, want %d", ce.Code, ce.Text, code)
			}
			return nil
		}
		return fmt.Errorf("read: %v, want close %d", err, code)
	}
}
