package filtertool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// Hostile modules end the run with exit status 1, and both the report and
// stderr name the hook, the kind of failure and its cause.
func TestRunHostileModules(t *testing.T) {
	tests := []struct {
		module, kind string
		cause        []string
	}{
		{"trap", "trap", []string{"wasm error: unreachable"}},
		{"loop", "timeout", []string{"exceeded the hook deadline of 10ms"}},
		{"misuse", "misuse", []string{"returned ActionRespond (1) without calling send_response"}},
		// Over the 16MiB memory_limit: memory.grow fails and the guest traps.
		{"greedy", "trap", []string{"wasm error: unreachable"}},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			code, out, errOut := runModule(t, RunOptions{Plugin: Plugin{Module: fixture(tt.module)}, URL: "/x"})
			if code != 1 {
				t.Fatalf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			mustContain(t, "stdout", out, "request_headers", "FAILED: "+tt.kind)
			mustContain(t, "stderr", errOut, "request_headers failed ("+tt.kind+")")
			mustContain(t, "stderr", errOut, tt.cause...)
		})
	}
}

// A module the loader refuses is exit status 1 with the loader's reason.
func TestRunRefusedModule(t *testing.T) {
	code, _, errOut := runModule(t, RunOptions{Plugin: Plugin{Module: fixture("command")}})
	if code != 1 {
		t.Fatalf("exit status %d, want 1: %s", code, errOut)
	}
	mustContain(t, "stderr", errOut, "is a WASI command module")
}

func TestRunReportsEveryHook(t *testing.T) {
	dir := t.TempDir()
	msgs := filepath.Join(dir, "m.jsonl")
	os.WriteFile(msgs, []byte("# a comment\n{\"direction\":\"client\",\"text\":\"secret\"}\n\n{\"direction\":\"upstream\",\"binary\":\"AAE=\"}\n"), 0o644)
	req := filepath.Join(dir, "req.http")
	os.WriteFile(req, []byte("GET /chat?room=1 HTTP/1.1\nHost: chat.example\nX-Trace: 7\n\n"), 0o644)

	t.Run("http", func(t *testing.T) {
		code, out, errOut := runModule(t, RunOptions{Plugin: Plugin{Module: fixture("tour")}, RequestFile: req, Status: 200, ResponseHeaders: []string{"Content-Type: text/plain"}})
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		mustContain(t, "stdout", out,
			"hooks   request_headers, response_headers, message, close",
			"request_headers", "continue",
			`changed   request header X-Tour: (absent) -> "yes"`,
			`state     k: (absent) -> "v"`,
			"shared    add hits +1 = 1 (ttl 1m0s)",
			"log       info   hello from tour",
			`changed   status: "200" -> "299"`)
		if strings.Contains(out, "message #") || strings.Contains(out, "\nclose") {
			t.Errorf("an HTTP exchange ran WebSocket hooks:\n%s", out)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		code, out, errOut := runModule(t, RunOptions{Plugin: Plugin{Module: fixture("tour")}, RequestFile: req, MessagesFile: msgs})
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		mustContain(t, "stdout", out,
			"message #1 (client->upstream, text)", `payload   "masked"`, `inject    upstream->client "ack"`,
			"message #2 (upstream->client, binary)", "drop",
			"close", "stdout bye")
		if strings.Contains(out, "\nresponse_headers ") {
			t.Errorf("an upgrade ran the response hook:\n%s", out)
		}
	})
	t.Run("local response", func(t *testing.T) {
		code, out, _ := runModule(t, RunOptions{Plugin: Plugin{Module: fixture("tour")}, URL: "/deny", Status: 200})
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		mustContain(t, "stdout", out, "respond", "response  403", `body "denied\n"`)
		if strings.Contains(out, "\nresponse_headers ") {
			t.Errorf("the response hook ran after a local response:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, out, _ := runModule(t, RunOptions{Plugin: Plugin{Module: fixture("tour")}, URL: "/a", JSON: true})
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		var res Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if len(res.Calls) != 1 || res.Calls[0].Hook != "request_headers" || res.Calls[0].Action != "continue" ||
			len(res.Calls[0].Shared) != 1 || res.Calls[0].Shared[0].Value != "1" || res.Failure != nil {
			t.Fatalf("result %+v", res)
		}
	})
}

// The plugin's settings come from a proxy.toml: its config, its limits and
// its module, relative to the proxy.toml's folder.
func TestRunWithProxyConfig(t *testing.T) {
	dir := t.TempDir()
	bin, _ := os.ReadFile(fixture("loop"))
	os.WriteFile(filepath.Join(dir, "loop.wasm"), bin, 0o644)
	proxy := filepath.Join(dir, "proxy.toml")
	os.WriteFile(proxy, []byte("[[upstream]]\nname = \"a\"\ntargets = [\"http://127.0.0.1:1\"]\n[[route]]\nupstream = \"a\"\nplugins = [\"slow\"]\n[[plugin]]\nname = \"slow\"\nmodule = \"loop.wasm\"\ntimeout = \"30ms\"\n"), 0o644)
	code, _, errOut := runModule(t, RunOptions{Plugin: Plugin{Proxy: proxy, Name: "slow"}})
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "stderr", errOut, "exceeded the hook deadline of 30ms")
	code, _, errOut = runModule(t, RunOptions{Plugin: Plugin{Proxy: proxy, Name: "nope"}})
	if code != 2 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "stderr", errOut, `has no [[plugin]] named "nope"`)
}

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "m.jsonl")
	os.WriteFile(bad, []byte("{\"direction\":\"sideways\",\"text\":\"x\"}\n"), 0o644)
	tests := []struct {
		name string
		o    RunOptions
		want string
	}{
		{"no module", RunOptions{}, "no module"},
		{"bad direction", RunOptions{Plugin: Plugin{Module: fixture("tour")}, MessagesFile: bad}, `messages line 1: direction "sideways"`},
		{"bad header", RunOptions{Plugin: Plugin{Module: fixture("tour")}, Headers: []string{"nocolon"}}, `header "nocolon"`},
		{"bad url", RunOptions{Plugin: Plugin{Module: fixture("tour")}, URL: "relative"}, `-url "relative"`},
		{"missing module", RunOptions{Plugin: Plugin{Module: filepath.Join(dir, "none.wasm")}}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runModule(t, tt.o)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, errOut)
			}
			mustContain(t, "stderr", errOut, tt.want)
		})
	}
}

func TestParseRequest(t *testing.T) {
	for name, in := range map[string]string{
		"lf":                "POST /p?q=1 HTTP/1.1\nHost: h\nContent-Length: 5\n\nhello",
		"crlf":              "POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"no content-length": "POST /p?q=1 HTTP/1.1\nHost: h\n\nhello",
	} {
		t.Run(name, func(t *testing.T) {
			r, body, err := ParseRequest([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if r.Method != "POST" || r.URL.Path != "/p" || r.URL.RawQuery != "q=1" || r.Host != "h" || string(body) != "hello" {
				t.Fatalf("got %s %s %q host %q body %q", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, body)
			}
		})
	}
}

// A filter that logs without end costs the report a bounded number of
// lines; the others are counted.
func TestRunBoundsCapturedLogs(t *testing.T) {
	pc := config.Plugin{Module: fixture("flood"), Timeout: config.Duration{Duration: 10 * time.Second}}
	r, err := NewRunner(pc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := &Sample{Request: httptest.NewRequest("GET", "/", nil)}
	res, err := r.Run(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failure != nil || len(res.Calls) != 1 {
		t.Fatalf("result %+v", res)
	}
	// The plugins package may rate-limit guest logs before they reach the
	// report; whatever arrives, at most maxCapturedLines are kept.
	c := res.Calls[0]
	total := len(c.Logs) + c.LogsDropped
	if total == 0 || total > 5000 || len(c.Logs) != min(total, maxCapturedLines) {
		t.Fatalf("kept %d lines, dropped %d", len(c.Logs), c.LogsDropped)
	}
	if c.LogsDropped > 0 {
		var out bytes.Buffer
		PrintResult(&out, res)
		mustContain(t, "report", out.String(), fmt.Sprintf("... and %d more lines, not kept", c.LogsDropped))
	}
}
