package examples_test

// End-to-end tests of the example filters: each filter is built from source
// to WebAssembly, loaded by the real plugin loader, and driven through the
// real proxy on 127.0.0.1 with net/http and gorilla/websocket clients, in
// front of a real backend.
//
// TinyGo builds every filter when it is installed (scripts/install-tinygo.sh);
// standard Go builds the noop and headers filters too, so both toolchains'
// modules go through the proxy. Without TinyGo, Go builds everything.
// -short skips these tests: building the modules takes a while.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/testkit"
	"github.com/sluiceproxy/sluice/plugins"
)

// tinygo returns the TinyGo binary, or "" when it is not installed.
func tinygo() string {
	if p, err := exec.LookPath("tinygo"); err == nil {
		return p
	}
	if _, err := os.Stat("/opt/tinygo/bin/tinygo"); err == nil {
		return "/opt/tinygo/bin/tinygo"
	}
	return ""
}

var built struct {
	once sync.Once
	dir  string // temporary directory of the modules built here
	path map[string]string
	err  error
}

// newestSource returns the modification time of the newest .go or go.mod
// file under dirs.
func newestSource(dirs ...string) time.Time {
	var newest time.Time
	for _, d := range dirs {
		filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !(strings.HasSuffix(path, ".go") || e.Name() == "go.mod") {
				return nil
			}
			if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
				newest = info.ModTime()
			}
			return nil
		})
	}
	return newest
}

// buildFilters returns the path of each module the tests load, keyed
// "<name>.wasm" (TinyGo, or Go without it) and, for noop and headers,
// "<name>.go.wasm" (Go). It uses the modules examples/build.sh left next to
// their sources when they are newer than every source file (make test
// builds them first), and builds the others once per test binary.
// SLUICE_E2E_REBUILD=1 always builds.
func buildFilters(t testing.TB) map[string]string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: building filter modules takes a while")
	}
	built.once.Do(func() {
		built.path = map[string]string{}
		tg := tinygo()
		sdk := newestSource(filepath.Join("..", "sdk", "go"))
		build := func(name, file string, useTinyGo bool) error {
			prebuilt := filepath.Join(name, file)
			if os.Getenv("SLUICE_E2E_REBUILD") == "" && (!useTinyGo || tg != "") {
				src := newestSource(name)
				if sdk.After(src) {
					src = sdk
				}
				if info, err := os.Stat(prebuilt); err == nil && info.ModTime().After(src) {
					// Absolute: configs written to a temporary folder
					// resolve module paths against that folder.
					abs, err := filepath.Abs(prebuilt)
					if err != nil {
						return err
					}
					built.path[file] = abs
					return nil
				}
			}
			if built.dir == "" {
				if built.dir, built.err = os.MkdirTemp("", "sluice-e2e-"); built.err != nil {
					return built.err
				}
			}
			out, err := filepath.Abs(filepath.Join(built.dir, file))
			if err != nil {
				return err
			}
			var cmd *exec.Cmd
			if useTinyGo {
				cmd = exec.Command(tg, "build", "-target=wasip1", "-buildmode=c-shared",
					"-scheduler=none", "-no-debug", "-o", out, ".")
			} else {
				cmd = exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			}
			cmd.Dir = name
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("build %s: %v\n%s", name, err, b)
			}
			built.path[file] = out
			return nil
		}
		for _, name := range []string{"auth", "headers", "redact", "guard", "noop", "ratelimit"} {
			if built.err = build(name, name+".wasm", tg != ""); built.err != nil {
				return
			}
		}
		for _, name := range []string{"noop", "headers"} {
			if built.err = build(name, name+".go.wasm", false); built.err != nil {
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// backend is the upstream: HTTP requests get their own request line and
// headers back as JSON; WebSockets are echoed and their handshakes reported
// (testkit.WSBackend).
type backend struct {
	addr string
	ws   *testkit.WSBackend
}

// seen is the JSON the backend answers HTTP requests with.
type seen struct {
	Method, Path, Query string
	Header              http.Header
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	ws := testkit.NewWSBackendWith(t, testkit.WSBackendOptions{Plain: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "backend/1.0")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header})
	})})
	return &backend{addr: ws.Server.Listener.Addr().String(), ws: ws}
}

// startProxy runs the real proxy with the real plugin loader on config
// (modules and the backend filled in) and returns its base URL.
func startProxy(t *testing.T, tomlText string) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return testkit.StartProxy(t, tomlText, func(_ string, cfg *config.Config) (testkit.Server, error) {
		loader := plugins.NewLoader(plugins.LoaderOptions{Logger: log})
		t.Cleanup(func() { loader.Close() })
		set, err := loader.Load(context.Background(), cfg)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { set.Close() })
		return host.New(cfg, host.Chains{Routes: set.Chains()}, host.Options{Logger: log})
	}).URL
}

// testWriter sends the proxy's warnings and errors to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// proxyConfig is a proxy.toml with one route per filter setup.
const proxyConfig = `
[server]
listen = "127.0.0.1:0"

[[upstream]]
name = "backend"
targets = ["http://{{backend}}"]

[[route]]
path_prefix = "/auth/"
upstream = "backend"
plugins = ["auth"]

[[route]]
path_prefix = "/headers/"
upstream = "backend"
plugins = ["headers"]

[[route]]
path_prefix = "/go/headers/"
upstream = "backend"
plugins = ["headers-go"]

[[route]]
path_prefix = "/redact/"
upstream = "backend"
plugins = ["redact"]

[[route]]
path_prefix = "/guard/"
upstream = "backend"
plugins = ["guard"]

[[route]]
path_prefix = "/rate/"
upstream = "backend"
plugins = ["rate"]

[[route]]
path_prefix = "/noop/"
upstream = "backend"
plugins = ["noop"]

[[route]]
path_prefix = "/go/noop/"
upstream = "backend"
plugins = ["noop-go"]

[[plugin]]
name = "auth"
module = "{{dir}}/auth.wasm"
timeout = "1s"
  [plugin.config]
  tokens = ["demo-token"]
  static_user = "demo"
  jwt_secret = "s3cret"

[[plugin]]
name = "headers"
module = "{{dir}}/headers.wasm"
timeout = "1s"
  [plugin.config.request]
  remove = ["X-Internal"]
  set = { "X-Env" = "prod" }
  add = { "X-Tag" = ["a", "b"] }
  [plugin.config.response]
  set = { "X-Powered-By" = "sluice" }
  remove = ["Server"]

[[plugin]]
name = "headers-go"
module = "{{dir}}/headers.go.wasm"
timeout = "1s"
  [plugin.config.response]
  set = { "X-Powered-By" = "sluice-go" }

[[plugin]]
name = "redact"
module = "{{dir}}/redact.wasm"
timeout = "1s"
  [plugin.config]
  fields = ["password", "ssn"]
  words = ["secret"]

[[plugin]]
name = "guard"
module = "{{dir}}/guard.wasm"
timeout = "1s"
  [plugin.config]
  max_size = 16
  deny_prefixes = ["DROP"]
  max_violations = 3

[[plugin]]
name = "rate"
module = "{{dir}}/guard.wasm"
timeout = "1s"
  [plugin.config]
  rate = 3

[[plugin]]
name = "noop"
module = "{{dir}}/noop.wasm"
timeout = "1s"

[[plugin]]
name = "noop-go"
module = "{{dir}}/noop.go.wasm"
timeout = "1s"
`

// setup builds the filters and starts the backend and the proxy.
func setup(t *testing.T) (*backend, string) {
	t.Helper()
	modules := buildFilters(t)
	b := startBackend(t)
	pairs := []string{"{{backend}}", b.addr}
	for file, path := range modules {
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, "{{dir}}/"+file, filepath.ToSlash(abs))
	}
	return b, startProxy(t, strings.NewReplacer(pairs...).Replace(proxyConfig))
}

func get(t *testing.T, u string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	signed := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims))
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(signed))
	return signed + "." + enc(mac.Sum(nil))
}

// dial opens a WebSocket through the proxy.
func dial(t *testing.T, base, path string, header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: protocols}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+path, header)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// roundTrip sends a message and reads the next one back.
func roundTrip(t *testing.T, c *websocket.Conn, kind int, payload string) (int, string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(kind, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading the echo of %q: %v", payload, err)
	}
	return k, string(p)
}

func TestE2E(t *testing.T) {
	b, base := setup(t)

	t.Run("auth/http", func(t *testing.T) {
		resp, body := get(t, base+"/auth/x", nil)
		if resp.StatusCode != 401 ||
			resp.Header.Get("WWW-Authenticate") != `Bearer realm="sluice", error="invalid_token"` ||
			resp.Header.Get("Content-Type") != "application/json" ||
			!strings.Contains(string(body), `"error":"invalid_token"`) {
			t.Fatalf("without a token: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		for token, user := range map[string]string{
			"demo-token": "demo",
			jwt(fmt.Sprintf(`{"sub":"alice","exp":%d}`, time.Now().Add(time.Hour).Unix())): "alice",
		} {
			resp, body = get(t, base+"/auth/x", http.Header{"Authorization": {"Bearer " + token}, "X-User": {"spoofed"}})
			var s seen
			if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil {
				t.Fatalf("with a token: %d %s", resp.StatusCode, body)
			}
			if s.Header.Get("X-User") != user || s.Header.Get("Authorization") != "" {
				t.Errorf("upstream saw X-User %q, Authorization %q", s.Header.Get("X-User"), s.Header.Get("Authorization"))
			}
		}
		resp, _ = get(t, base+"/auth/x", http.Header{"Authorization": {"Bearer " + jwt(`{"sub":"alice","exp":1}`)}})
		if resp.StatusCode != 401 {
			t.Fatalf("expired JWT: %d", resp.StatusCode)
		}
	})

	t.Run("auth/websocket", func(t *testing.T) {
		_, resp, err := dial(t, base, "/auth/ws", nil)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("upgrade without a token: %v %v", err, resp)
		}

		// A browser: the token in the query.
		c, _, err := dial(t, base, "/auth/ws?room=1&access_token=demo-token", nil)
		if err != nil {
			t.Fatal(err)
		}
		hs := b.ws.WaitHeaders(t)
		if hs.URL.RawQuery != "room=1" || hs.Header.Get("X-User") != "demo" {
			t.Errorf("upstream handshake: query %q, X-User %q", hs.URL.RawQuery, hs.Header.Get("X-User"))
		}
		if _, p := roundTrip(t, c, websocket.TextMessage, "hi"); p != "hi" {
			t.Errorf("echo %q", p)
		}

		// A browser: the token as a subprotocol, next to the real one.
		c, _, err = dial(t, base, "/auth/ws", nil, "bearer."+jwt(`{"sub":"bob"}`), "chat.v2")
		if err != nil {
			t.Fatal(err)
		}
		hs = b.ws.WaitHeaders(t)
		if got := hs.Header.Get("Sec-Websocket-Protocol"); got != "chat.v2" || hs.Header.Get("X-User") != "bob" {
			t.Errorf("upstream handshake: protocols %q, X-User %q", got, hs.Header.Get("X-User"))
		}
		if c.Subprotocol() != "chat.v2" {
			t.Errorf("client got subprotocol %q, want chat.v2", c.Subprotocol())
		}
		if _, p := roundTrip(t, c, websocket.TextMessage, "hi"); p != "hi" {
			t.Errorf("echo %q", p)
		}
	})

	for _, tc := range []struct{ name, prefix, powered string }{
		{"headers", "/headers/", "sluice"},
		{"headers/go-toolchain", "/go/headers/", "sluice-go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, base+tc.prefix+"x", http.Header{"X-Internal": {"secret"}, "X-Env": {"dev"}})
			var s seen
			if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Powered-By"); got != tc.powered {
				t.Errorf("X-Powered-By = %q", got)
			}
			if tc.powered == "sluice" {
				if s.Header.Get("X-Internal") != "" || s.Header.Get("X-Env") != "prod" ||
					strings.Join(s.Header.Values("X-Tag"), ",") != "a,b" {
					t.Errorf("upstream saw %v", s.Header)
				}
				if resp.Header.Get("Server") != "" {
					t.Errorf("Server header not removed: %q", resp.Header.Get("Server"))
				}
			}
		})
	}

	t.Run("redact", func(t *testing.T) {
		c, _, err := dial(t, base, "/redact/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		b.ws.WaitHeaders(t)
		for in, want := range map[string]string{
			`{"user":"ann","profile":{"password":"pw","ssn":"123"}}`: `{"user":"ann","profile":{"password":"***","ssn":"***"}}`,
			"my secret plan":    "my *** plan",
			"nothing to see":    "nothing to see",
			`{"text":"secret"}`: `{"text":"***"}`,
		} {
			if _, got := roundTrip(t, c, websocket.TextMessage, in); got != want {
				t.Errorf("%s -> %s, want %s", in, got, want)
			}
		}
		if k, got := roundTrip(t, c, websocket.BinaryMessage, `{"password":"pw"}`); k != websocket.BinaryMessage || got != `{"password":"pw"}` {
			t.Errorf("binary changed: %d %q", k, got)
		}
	})

	t.Run("guard", func(t *testing.T) {
		c, _, err := dial(t, base, "/guard/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		b.ws.WaitHeaders(t)
		// A dropped message never reaches the echo: the next echo is the
		// next good message.
		send := func(p string) {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		next := func() (string, error) {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, p, err := c.ReadMessage()
			return string(p), err
		}
		send("this one is far too long")
		send("ok 1")
		if p, err := next(); p != "ok 1" {
			t.Fatalf("after an oversized message: %q %v", p, err)
		}
		send("DROP table")
		send("ok 2")
		if p, err := next(); p != "ok 2" {
			t.Fatalf("after a denied prefix: %q %v", p, err)
		}
		send("DROP again") // the third violation
		_, err = next()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1008 {
			t.Fatalf("after the third violation: %v, want close 1008", err)
		}
	})

	t.Run("guard/rate", func(t *testing.T) {
		c, _, err := dial(t, base, "/rate/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		b.ws.WaitHeaders(t)
		for i := 0; i < 10; i++ {
			c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("m", i)))
		}
		time.Sleep(1100 * time.Millisecond) // the bucket refills
		c.WriteMessage(websocket.TextMessage, []byte("end"))
		echoed := 0
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if string(p) == "end" {
				break
			}
			echoed++
		}
		// A burst of 3 (the rate), plus what refilled while the burst was
		// being sent, which is well under one message on loopback.
		if echoed < 3 || echoed > 4 {
			t.Fatalf("%d of a burst of 10 passed a rate of 3/s", echoed)
		}
	})

	for _, prefix := range []string{"/noop/", "/go/noop/"} {
		t.Run("noop"+strings.TrimSuffix(prefix, "/noop/"), func(t *testing.T) {
			c, _, err := dial(t, base, prefix+"ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			b.ws.WaitHeaders(t)
			big := strings.Repeat("x", 100_000)
			for _, p := range []string{"a", big, ""} {
				if _, got := roundTrip(t, c, websocket.TextMessage, p); got != p {
					t.Fatalf("noop changed a message of %d bytes", len(p))
				}
			}
		})
	}
}
