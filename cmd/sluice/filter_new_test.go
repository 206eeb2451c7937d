package main

// `sluice filter new` as an author uses it: the real binary creates a
// project in a temporary folder outside the repository, make builds it with
// the installed toolchains, make test runs its cases, and a running proxy
// (the same binary) hot-reloads the module and serves requests and
// WebSocket messages through it.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// passWAT is the module the proxy starts with, before a project's build
// replaces it: it handles requests and does nothing.
const passWAT = `(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (i32.const 0)))`

func TestFilterNewProjects(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sluice binary and three filter projects")
	}
	testkit.Tool(t, "make")
	wat2wasm := testkit.Tool(t, "wat2wasm")
	work := t.TempDir()
	sluice := filepath.Join(work, "bin", "sluice")
	if out, err := exec.Command("go", "build", "-o", sluice, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The proxy: one route through the plugin "mine", whose module file the
	// test replaces with each project's build.
	back := echoBackend(t)
	proxyDir := filepath.Join(work, "proxy")
	os.MkdirAll(proxyDir, 0o755)
	module := filepath.Join(proxyDir, "mine.wasm")
	wat := filepath.Join(work, "pass.wat")
	os.WriteFile(wat, []byte(passWAT), 0o644)
	if out, err := exec.Command(wat2wasm, wat, "-o", module).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	listen := freeAddr(t)
	conf := fmt.Sprintf(`[server]
listen = %q

[[upstream]]
name = "app"
targets = [%q]

[[route]]
path_prefix = "/"
upstream = "app"
plugins = ["mine"]

[[plugin]]
name = "mine"
module = "mine.wasm"
timeout = "1s"
`, listen, back.URL)
	os.WriteFile(filepath.Join(proxyDir, "proxy.toml"), []byte(conf), 0o644)
	var logs bytes.Buffer
	proxy := exec.Command(sluice, "-config", "proxy.toml")
	proxy.Dir = proxyDir
	proxy.Stderr = &logs // read only after Wait
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proxy.Process.Signal(syscall.SIGTERM)
		proxy.Wait()
		if t.Failed() {
			var kept []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if !strings.Contains(l, "msg=access") {
					kept = append(kept, l)
				}
			}
			t.Logf("proxy log (access lines left out):\n%s", strings.Join(kept, "\n"))
		}
	})
	base := "http://" + listen
	waitFor(t, "the proxy to serve", func() bool {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	langs := []string{"go", "tinygo", "rust"}
	for _, lang := range langs {
		t.Run(lang, func(t *testing.T) {
			switch lang {
			case "tinygo":
				testkit.Tool(t, "tinygo", testkit.TinyGoPlaces...)
			case "rust":
				// The project's Makefile names Debian's cargo and rustc.
				if _, err := os.Stat("/usr/bin/cargo"); err != nil {
					testkit.Missing(t, fmt.Errorf("/usr/bin/cargo %w", testkit.ErrMissingTool))
				}
			}
			name := "my_" + lang
			dir := filepath.Join(work, "projects", name)
			sh(t, work, sluice, "filter", "new", "-lang", lang, "-dir", dir, name)
			sh(t, dir, "make")
			out := sh(t, dir, "make", "test")
			if !strings.Contains(out, "3 passed, 0 failed") {
				t.Fatalf("make test:\n%s", out)
			}
			built, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
			if err != nil {
				t.Fatal(err)
			}
			// Replace the module as a build tool does (write, rename); the
			// proxy's watcher reloads it.
			tmp := module + ".tmp"
			os.WriteFile(tmp, built, 0o644)
			if err := os.Rename(tmp, module); err != nil {
				t.Fatal(err)
			}
			// A Go module takes seconds to compile on a busy machine.
			deadline := time.Now().Add(60 * time.Second)
			for got := ""; got != "X-Filter="+name; got = get(t, base+"/hello") {
				if time.Now().After(deadline) {
					t.Fatalf("the reloaded filter does not serve within 60s: last answer %q", got)
				}
				time.Sleep(50 * time.Millisecond)
			}
			resp, err := http.Get(base + "/blocked")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 || string(body) != "blocked by "+name+"\n" {
				t.Fatalf("/blocked: %d %q", resp.StatusCode, body)
			}
			c, _, err := websocket.DefaultDialer.Dial("ws://"+listen+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.WriteMessage(websocket.TextMessage, []byte("ping"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := c.ReadMessage()
			if err != nil || string(msg) != "pong" {
				t.Fatalf("echo of ping through the filter: %q, %v", msg, err)
			}
		})
	}
}

// sh runs a command in dir and returns its output; a failure fails the test.
func sh(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func get(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// echoBackend answers HTTP requests with "X-Filter=<the header's value>" and
// echoes WebSocket messages.
func echoBackend(t *testing.T) *httptest.Server {
	up := websocket.Upgrader{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			io.WriteString(w, "X-Filter="+r.Header.Get("X-Filter"))
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil || c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}
