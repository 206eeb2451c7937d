package main

// The metrics, the status of failures and their logs, seen as an operator
// sees them: a known workload through the real proxy (HTTP, WebSockets in
// raw and message mode, a filter that traps, loops and misuses the ABI, a
// dead upstream, reloads), then a scrape of /metrics parsed with expfmt.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/metrics"
	"github.com/sluiceproxy/sluice/host/reload"
	"github.com/sluiceproxy/sluice/host/testkit"
	"github.com/sluiceproxy/sluice/plugins"
)

// syncBuffer is a log sink the proxy's goroutines write to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the JSON log records written so far.
func (s *syncBuffer) records(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(s.b.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// opsProxy is a proxy wired as serve wires it (one metrics registry for the
// proxy, the plugins and the reloader), logging JSON to logs.
type opsProxy struct {
	path, url, admin string
	r                *reload.Reloader
	logs             *syncBuffer
}

// buildGate builds testdata/gate.wat with its function names.
func buildGate(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm not installed (make setup installs wabt)")
	}
	out := filepath.Join(dir, "gate.wasm")
	if b, err := exec.Command("wat2wasm", "--debug-names", "testdata/gate.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

func startOps(t *testing.T, dir, conf string) *opsProxy {
	t.Helper()
	o := &opsProxy{path: filepath.Join(dir, "proxy.toml"), logs: &syncBuffer{}}
	if err := os.WriteFile(o.path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := newLogger(o.logs, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.New(metrics.ReadBuildInfo())
	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: log, BaseDir: dir, Metrics: reg})
	r, err := reload.New(o.path, loaderBuilder(loader, nil, log), host.Options{Logger: log, Metrics: reg})
	if err != nil {
		loader.Close()
		t.Fatal(err)
	}
	o.r = r
	if err := r.Proxy().Listen(); err != nil {
		t.Fatal(err)
	}
	o.url = "http://" + r.Proxy().Addr().String()
	o.admin = "http://" + r.Proxy().AdminAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Proxy().Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		r.Close()
		deadline := time.Now().Add(2 * time.Second)
		for loader.Close() != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	})
	return o
}

// opsBackend answers HTTP with "hello" and echoes WebSocket messages.
func opsBackend(t *testing.T) *httptest.Server {
	up := websocket.Upgrader{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(s.Close)
	return s
}

func opsConfig(backend, dead string, extra string) string {
	return fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
reload_grace = "0s"
[admin]
listen = "127.0.0.1:0"

[[upstream]]
name = "app"
targets = [%q]
  [upstream.health]
  path = "/healthz"
  interval = "50ms"
  healthy_threshold = 1

[[upstream]]
name = "dead"
targets = [%q]
passive_failures = 2
passive_eject_for = "5m"

[[route]]
name = "plain"
path_prefix = "/plain/"
upstream = "app"

[[route]]
name = "gated"
path_prefix = "/g/"
upstream = "app"
plugins = ["gate"]

[[route]]
name = "raw"
path_prefix = "/raw"
upstream = "app"

[[route]]
name = "msg"
path_prefix = "/msg"
upstream = "app"
plugins = ["gate"]

[[route]]
name = "dead"
path_prefix = "/dead"
upstream = "dead"
%s
[[plugin]]
name = "gate"
module = "gate.wasm"
timeout = "50ms"
pool_size = 2
max_local_response = 8
# The workload fails calls in a row on purpose, cause after cause: the
# circuit breaker (tested in plugins) would answer them as "tripped".
breaker_failures = 1000
`, backend, dead, extra)
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestMetricsAfterKnownWorkload(t *testing.T) {
	dir := t.TempDir()
	buildGate(t, dir)
	back := opsBackend(t)
	dead := deadAddr(t)
	o := startOps(t, dir, opsConfig(back.URL, dead, ""))

	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(o.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	want := func(path string, status int) string {
		t.Helper()
		got, body, h := get(path)
		if got != status {
			t.Fatalf("GET %s: %d %q, want %d", path, got, body, status)
		}
		return h.Get("X-Request-Id") + " " + body
	}

	// HTTP without filters: 5 GETs and a POST of 100 bytes.
	for range 5 {
		want("/plain/x", 200)
	}
	resp, err := http.Post(o.url+"/plain/x", "text/plain", strings.NewReader(strings.Repeat("b", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Through the filter: 3 continue, 2 deliberate 403s, a trap, a
	// timeout, an ABI misuse and a local response over its quota (503
	// each).
	for range 3 {
		want("/g/ok", 200)
	}
	want("/g/d", 403)
	want("/g/d", 403)
	trapAnswer := want("/g/t", 503)
	want("/g/l", 503)
	want("/g/m", 503)
	want("/g/q", 503)
	want("/nowhere", 404)
	// The dead upstream: two connection errors eject its only target, the
	// third request finds none.
	want("/dead", 502)
	want("/dead", 502)
	want("/dead", 503)

	// The 503 of a failure says so and carries the request id.
	id, body, _ := strings.Cut(trapAnswer, " ")
	if !strings.Contains(body, "filter failed") || !strings.Contains(body, id) || id == "" {
		t.Errorf("503 after a trap: body %q, want it to name the failure and request id %q", body, id)
	}

	// WebSockets: raw mode (3 echoed messages, the client closes), message
	// mode (pass, drop, a filter close with 4001), message mode again
	// (a trap: 1011 with the request id).
	ws := func(path string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(o.url, "http")+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	c := ws("/raw")
	for range 3 {
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, m, err := c.ReadMessage(); err != nil || string(m) != "hello" {
			t.Fatalf("raw echo: %q %v", m, err)
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	c.ReadMessage() // the close reply
	c.Close()

	c = ws("/msg")
	c.WriteMessage(websocket.TextMessage, []byte("pass"))
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "pass" {
		t.Fatalf("message echo: %q %v", m, err)
	}
	c.WriteMessage(websocket.TextMessage, []byte("drop"))
	c.WriteMessage(websocket.TextMessage, []byte("close"))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4001 {
		t.Fatalf("after a filter close: %v, want close 4001", err)
	}
	c.Close()

	c = ws("/msg")
	c.WriteMessage(websocket.TextMessage, []byte("trap"))
	_, _, err = c.ReadMessage()
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != 1011 || !strings.Contains(ce.Text, "request id") {
		t.Fatalf("after a trap in a message hook: %v, want 1011 with the request id", err)
	}
	c.Close()

	// Reloads: one that changes the config, one that finds nothing new.
	if err := os.WriteFile(o.path, []byte(opsConfig(back.URL, dead, "\n[[route]]\nname = \"extra\"\npath_prefix = \"/extra/\"\nredirect = \"https://example.com/\"\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := o.r.Reload("test", false); err != nil || st.LastResult != reload.Loaded {
		t.Fatalf("reload: %v %+v", err, st)
	}
	if st, _ := o.r.Reload("test", false); st.LastResult != reload.Unchanged {
		t.Fatalf("second reload: %+v", st)
	}

	// Sessions end asynchronously: wait until none is open.
	var fams map[string]*dto.MetricFamily
	waitFor(t, "WebSocket sessions to end and health checks to run", func() bool {
		fams = scrape(t, o.admin)
		return value(fams, "sluice_websocket_sessions_open", nil) == 0 &&
			value(fams, "sluice_websocket_closes_total", nil) == 3 &&
			value(fams, "sluice_upstream_health_checks_total", map[string]string{"upstream": "app", "result": "success"}) >= 1
	})

	L := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_http_requests_total", L("route", "plain", "class", "2xx"), 6},
		{"sluice_http_request_body_bytes_total", L("route", "plain"), 100},
		{"sluice_http_response_body_bytes_total", L("route", "plain"), 30},
		{"sluice_http_requests_total", L("route", "gated", "class", "2xx"), 3},
		{"sluice_http_requests_total", L("route", "gated", "class", "4xx"), 2},
		{"sluice_http_requests_total", L("route", "gated", "class", "5xx"), 4},
		{"sluice_http_requests_total", L("route", "(none)", "class", "4xx"), 1},
		{"sluice_http_requests_total", L("route", "raw", "class", "1xx"), 1},
		{"sluice_http_requests_total", L("route", "msg", "class", "1xx"), 2},
		{"sluice_http_proxy_errors_total", L("route", "gated", "code", "503", "cause", "filter_failure"), 4},
		{"sluice_http_proxy_errors_total", L("route", "dead", "code", "502", "cause", "upstream_unreachable"), 2},
		{"sluice_http_proxy_errors_total", L("route", "dead", "code", "503", "cause", "no_healthy_target"), 1},
		{"sluice_upstream_ejections_total", L("upstream", "dead"), 1},
		{"sluice_upstream_target_up", L("upstream", "app"), 1},
		{"sluice_upstream_target_up", L("upstream", "dead"), 0},
		{"sluice_upstream_request_duration_seconds", L("upstream", "app"), 9}, // 6 plain + 3 gated
		// request_headers ran for 11 requests: 9 on /g/ and 2 upgrades on /msg.
		{"sluice_filter_hook_calls_total", L("plugin", "gate", "hook", "request_headers"), 11},
		{"sluice_filter_hook_duration_seconds", L("plugin", "gate", "hook", "request_headers"), 11},
		{"sluice_filter_hook_outcomes_total", L("plugin", "gate", "hook", "request_headers", "outcome", "continue"), 5},
		{"sluice_filter_hook_outcomes_total", L("plugin", "gate", "hook", "request_headers", "outcome", "respond"), 2},
		{"sluice_filter_hook_outcomes_total", L("plugin", "gate", "hook", "request_headers", "outcome", "failure"), 4},
		{"sluice_filter_failures_total", L("plugin", "gate", "hook", "request_headers", "cause", "trap"), 1},
		{"sluice_filter_failures_total", L("plugin", "gate", "hook", "request_headers", "cause", "timeout"), 1},
		{"sluice_filter_failures_total", L("plugin", "gate", "hook", "request_headers", "cause", "abi_misuse"), 1},
		{"sluice_filter_failures_total", L("plugin", "gate", "hook", "request_headers", "cause", "quota"), 1},
		// Messages both ways: pass, drop, close, trap and the echo of pass.
		{"sluice_filter_hook_calls_total", L("plugin", "gate", "hook", "message"), 5},
		{"sluice_filter_hook_outcomes_total", L("plugin", "gate", "hook", "message", "outcome", "continue"), 2},
		{"sluice_filter_hook_outcomes_total", L("plugin", "gate", "hook", "message", "outcome", "drop"), 1},
		{"sluice_filter_hook_outcomes_total", L("plugin", "gate", "hook", "message", "outcome", "close"), 1},
		{"sluice_filter_failures_total", L("plugin", "gate", "hook", "message", "cause", "trap"), 1},
		{"sluice_websocket_sessions_total", L("route", "raw", "mode", "raw"), 1},
		{"sluice_websocket_sessions_total", L("route", "msg", "mode", "message"), 2},
		{"sluice_websocket_messages_total", L("route", "raw", "direction", "client_to_upstream"), 3},
		{"sluice_websocket_messages_total", L("route", "raw", "direction", "upstream_to_client"), 3},
		// Message mode counts what each side sent: pass, drop, close, trap.
		{"sluice_websocket_messages_total", L("route", "msg", "direction", "client_to_upstream"), 4},
		{"sluice_websocket_messages_total", L("route", "msg", "direction", "upstream_to_client"), 1},
		{"sluice_websocket_bytes_total", L("route", "msg", "direction", "client_to_upstream"), 17},
		{"sluice_websocket_closes_total", L("route", "raw", "code", "1000", "closer", "client"), 1},
		{"sluice_websocket_closes_total", L("route", "msg", "code", "4xxx", "closer", "proxy"), 1},
		{"sluice_websocket_closes_total", L("route", "msg", "code", "1011", "closer", "proxy"), 1},
		{"sluice_reloads_total", L("result", "loaded"), 1},
		{"sluice_reloads_total", L("result", "unchanged"), 1},
		{"sluice_reloads_total", L("result", "failed"), 0},
		{"sluice_reload_duration_seconds", nil, 2},
		{"sluice_generation", nil, 2},
		{"sluice_build_info", nil, 1},
	} {
		if got := value(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Wire bytes in raw mode: at least the payloads (plus frame headers).
	if got := value(fams, "sluice_websocket_bytes_total", L("route", "raw", "direction", "client_to_upstream")); got < 15 {
		t.Errorf("raw bytes client_to_upstream = %v, want at least 15", got)
	}
	for _, name := range []string{"sluice_filter_instances_created_total", "sluice_filter_memory_bytes", "process_cpu_seconds_total", "go_goroutines"} {
		if got := value(fams, name, nil); got <= 0 {
			t.Errorf("%s = %v, want > 0", name, got)
		}
	}
	if at := value(fams, "sluice_generation_loaded_timestamp_seconds", nil); time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("generation loaded at %v", at)
	}
	// No label carries a path or an address.
	for _, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "/g/") || strings.Contains(l.GetValue(), "nowhere") {
					t.Errorf("%s has label %s=%q", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}

	// The access log tells the failures from the deliberate answers.
	var replies, failures []string
	for _, r := range o.logs.records(t) {
		if r["msg"] != "access" || r["route"] != "gated" {
			continue
		}
		if _, ok := r["duration_ms"].(float64); !ok {
			t.Errorf("access record without a duration_ms float: %v", r)
		}
		if r["filter_reply"] == true {
			replies = append(replies, r["path"].(string))
		}
		if fe, ok := r["filter_error"].(string); ok {
			failures = append(failures, r["path"].(string)+"="+fe)
		}
	}
	if got := strings.Join(replies, " "); got != "/g/d /g/d" {
		t.Errorf("access records with filter_reply: %q", got)
	}
	if got := strings.Join(failures, " "); got != "/g/t=trap /g/l=timeout /g/m=abi_misuse /g/q=quota" {
		t.Errorf("access records with filter_error: %q", got)
	}

	dashboardUsesExportedFamilies(t, fams)
	promtoolCheck(t, o.admin)
}

// dashboardUsesExportedFamilies checks that every sluice_ family the
// Grafana dashboard in docs/ queries is one the proxy exports.
func dashboardUsesExportedFamilies(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana", "sluice-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\bsluice_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) < 20 {
		t.Fatalf("the dashboard queries only %d sluice_ series", len(names))
	}
	for _, n := range names {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if trimmed, ok := strings.CutSuffix(n, suffix); ok && fams[trimmed] != nil {
				base = trimmed
			}
		}
		if fams[base] == nil {
			t.Errorf("the dashboard queries %s, which /metrics does not export", n)
		}
	}
}

// TestFailureLogRecords checks the log record of each failure cause: who
// (request id, route, plugin, hook), why (cause, error) and, for a trap,
// where in the guest (its stack, with function names).
func TestFailureLogRecords(t *testing.T) {
	dir := t.TempDir()
	buildGate(t, dir)
	back := opsBackend(t)
	o := startOps(t, dir, opsConfig(back.URL, deadAddr(t), ""))

	// Records are limited to one a second per plugin and cause: the second
	// trap waits that second out.
	for _, c := range []struct {
		path, cause, hook string
		stack, wait       bool
	}{
		{"/msg", "trap", "message", true, false},
		{"/g/l", "timeout", "request_headers", false, false},
		{"/g/m", "abi_misuse", "request_headers", false, false},
		{"/g/q", "quota", "request_headers", false, false},
		{"/g/t", "trap", "request_headers", true, true},
	} {
		t.Run(c.cause+"_"+c.hook, func(t *testing.T) {
			if c.wait {
				time.Sleep(1100 * time.Millisecond)
			}
			id := fmt.Sprintf("test-%s-%s", c.cause, c.hook)
			h := http.Header{"X-Request-Id": {id}}
			if c.hook == "message" {
				conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(o.url, "http")+c.path, h)
				if err != nil {
					t.Fatal(err)
				}
				conn.WriteMessage(websocket.TextMessage, []byte("trap"))
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				conn.ReadMessage()
				conn.Close()
			} else {
				req, _ := http.NewRequest("GET", o.url+c.path, nil)
				req.Header = h
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			var rec map[string]any
			waitFor(t, "the failure's log record", func() bool {
				for _, r := range o.logs.records(t) {
					if r["msg"] == "plugins: hook failed" && r["request_id"] == id {
						rec = r
						return true
					}
				}
				return false
			})
			for k, want := range map[string]string{
				"request_id": id, "plugin": "gate", "hook": c.hook, "cause": c.cause, "on_error": "deny",
			} {
				if rec[k] != want {
					t.Errorf("%s = %v, want %q (record %v)", k, rec[k], want, rec)
				}
			}
			wantRoute := "gated"
			if c.hook == "message" {
				wantRoute = "msg"
			}
			if rec["route"] != wantRoute {
				t.Errorf("route = %v, want %s", rec["route"], wantRoute)
			}
			if e, _ := rec["error"].(string); e == "" || strings.Contains(e, "\n") {
				t.Errorf("error = %q, want one line", e)
			}
			if e, _ := rec["error"].(string); c.cause == "quota" && !strings.Contains(e, "max_local_response") {
				t.Errorf("error = %q, want it to name the quota's key", e)
			}
			if _, ok := rec["dropped_since_last"].(float64); !ok {
				t.Errorf("no dropped_since_last count: %v", rec)
			}
			stack, _ := rec["guest_stack"].([]any)
			if c.stack {
				if len(stack) == 0 || !strings.Contains(fmt.Sprint(stack[0]), "boom") {
					t.Errorf("guest_stack = %v, want it to start in $boom", rec["guest_stack"])
				}
			} else if stack != nil {
				t.Errorf("guest_stack = %v for a %s", stack, c.cause)
			}
		})
	}
}

// TestFailureLogRateLimitPerCause: a burst of traps logs few records, a
// timeout in the same second still logs its own, and the records account
// for every trap through their dropped counts.
func TestFailureLogRateLimitPerCause(t *testing.T) {
	dir := t.TempDir()
	buildGate(t, dir)
	back := opsBackend(t)
	o := startOps(t, dir, opsConfig(back.URL, deadAddr(t), ""))
	get := func(path string) {
		resp, err := http.Get(o.url + path)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); get("/g/t") }()
	}
	wg.Wait()
	get("/g/l")
	time.Sleep(1100 * time.Millisecond)
	get("/g/t") // logged: a second has passed; it reports the dropped ones

	traps, timeouts, accounted := 0, 0, 0
	for _, r := range o.logs.records(t) {
		if r["msg"] != "plugins: hook failed" {
			continue
		}
		switch r["cause"] {
		case "trap":
			traps++
			accounted += 1 + int(r["dropped_since_last"].(float64))
		case "timeout":
			timeouts++
		}
	}
	if timeouts != 1 {
		t.Errorf("%d timeout records, want 1: a burst of traps must not hide it", timeouts)
	}
	if traps >= 6 || traps < 2 {
		t.Errorf("%d trap records for 6 traps, want the burst limited", traps)
	}
	if accounted != 6 {
		t.Errorf("trap records account for %d traps (records plus dropped counts), want 6", accounted)
	}
}

// TestDebugLogsEachHookCall: at debug level every hook call is logged with
// its outcome and duration.
func TestDebugLogsEachHookCall(t *testing.T) {
	dir := t.TempDir()
	buildGate(t, dir)
	back := opsBackend(t)
	o := startOps(t, dir, opsConfig(back.URL, deadAddr(t), ""))
	o.logs.mu.Lock()
	o.logs.b.Reset()
	o.logs.mu.Unlock()
	// The proxy logs at info: no hook call records.
	resp, err := http.Get(o.url + "/g/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, r := range o.logs.records(t) {
		if r["msg"] == "plugins: hook call" {
			t.Fatalf("hook call logged at info level: %v", r)
		}
	}

	var buf syncBuffer
	log, _ := newLogger(&buf, "json", "debug")
	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: log, BaseDir: dir})
	defer loader.Close()
	p := startWith(t, o.path, loader, log)
	for _, path := range []string{"/g/ok", "/g/d"} {
		resp, err := http.Get(p + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var outcomes []string
	for _, r := range buf.records(t) {
		if r["msg"] != "plugins: hook call" {
			continue
		}
		if d, ok := r["duration_ms"].(float64); !ok || d <= 0 {
			t.Errorf("hook call record without a duration_ms: %v", r)
		}
		if r["plugin"] != "gate" || r["hook"] != "request_headers" || r["route"] != "gated" {
			t.Errorf("hook call record: %v", r)
		}
		outcomes = append(outcomes, r["outcome"].(string))
	}
	if got := strings.Join(outcomes, " "); got != "continue respond" {
		t.Errorf("hook call outcomes: %q, want \"continue respond\"", got)
	}
}

// startWith serves the config at path with loader and log, and returns
// the proxy's URL.
func startWith(t *testing.T, path string, loader *plugins.Loader, log *slog.Logger) string {
	t.Helper()
	r, err := reload.New(path, loaderBuilder(loader, nil, log), host.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	px := r.Proxy()
	if err := px.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- px.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	return "http://" + px.Addr().String()
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value sums the samples of family name whose labels include labels: a
// counter's or gauge's value, a histogram's count.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	sum := 0.0
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// promtoolCheck lints the exposition with promtool check metrics. Without
// promtool the check is skipped, unless CI is set.
func promtoolCheck(t *testing.T, admin string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed (scripts/install-tools.sh installs Debian's prometheus package)")
		}
		t.Log("promtool not installed: skipping promtool check metrics (scripts/install-tools.sh installs it)")
		return
	}
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
