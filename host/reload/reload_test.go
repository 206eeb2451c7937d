package reload

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// stampChain is a Go filter for reload tests: it stamps its value on
// responses (X-Stamp) and appends it to client messages, so every response
// and message shows which generation's chain handled it.
type stampChain struct {
	value string
	hooks filter.HookSet
}

func (c *stampChain) Hooks() filter.HookSet                           { return c.hooks }
func (c *stampChain) OnRequestHeaders(*filter.Exchange) *filter.Reply { return nil }
func (c *stampChain) OnUpgrade(*filter.Exchange) *filter.Reply        { return nil }
func (c *stampChain) OnClose(*filter.Session)                         {}
func (c *stampChain) OnResponseHeaders(x *filter.Exchange) *filter.Reply {
	x.ResponseHeader.Set("X-Stamp", c.value)
	return nil
}
func (c *stampChain) OnMessage(_ *filter.Session, m *filter.Message) filter.MessageVerdict {
	if m.Direction == filter.ClientToUpstream {
		m.Payload = append(m.Payload, " ["+c.value+"]"...)
	}
	return filter.MessageVerdict{}
}

// stampBuilder builds a stampChain for every route that lists a plugin,
// from that plugin's config: value (the stamp), messages (false: no message
// hook, so sessions are relayed raw) and fail (the build fails with it).
// It counts builds and closes, so tests see what a reload built and
// released.
type stampBuilder struct {
	builds, closes atomic.Int64
	// hold, when set, makes a build wait until it is closed, after saying
	// so on entered.
	hold, entered chan struct{}
}

func (b *stampBuilder) build(cfg *config.Config, _ map[string][]byte) (Built, error) {
	b.builds.Add(1)
	if b.hold != nil {
		b.entered <- struct{}{}
		<-b.hold
	}
	chains := map[string]filter.Chain{}
	for _, r := range cfg.Routes {
		for _, name := range r.Plugins {
			for _, pc := range cfg.Plugins {
				if pc.Name != name {
					continue
				}
				if msg, _ := pc.Config["fail"].(string); msg != "" {
					return Built{}, fmt.Errorf("stamp: plugin %q (%s): %s", pc.Name, pc.Module, msg)
				}
				c := &stampChain{hooks: filter.HookResponseHeaders | filter.HookMessage}
				c.value, _ = pc.Config["value"].(string)
				if m, ok := pc.Config["messages"].(bool); ok && !m {
					c.hooks = filter.HookResponseHeaders
				}
				chains[r.Name] = c
			}
		}
	}
	return Built{Chains: host.Chains{Routes: chains, Closer: closerFunc(func() error { b.closes.Add(1); return nil })}}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// rlEnv is a Reloader serving a proxy.toml in a temporary directory.
type rlEnv struct {
	t       *testing.T
	dir     string
	path    string
	b       *stampBuilder
	r       *Reloader
	url     string
	admin   string
	backend string
}

// rlConf is the config the reload tests start from and edit.
type rlConf struct {
	Listen, Admin, Grace, Backend string
	Stamp, Route, Extra           string
	Messages                      bool
}

func (c rlConf) String() string {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:0"
	}
	if c.Grace == "" {
		c.Grace = "5s"
	}
	if c.Route == "" {
		c.Route = "main"
	}
	return fmt.Sprintf(`[server]
listen = %q
reload_grace = %q
%s
[admin]
listen = %q

[[upstream]]
name = "app"
targets = [%q]

[[route]]
name = %q
path_prefix = "/"
upstream = "app"
plugins = ["stamp"]

[[plugin]]
name = "stamp"
module = "stamp.bin"
  [plugin.config]
  value = %q
  messages = %v
`, c.Listen, c.Grace, c.Extra, c.Admin, c.Backend, c.Route, c.Stamp, c.Messages)
}

func rlStart(t *testing.T, c rlConf) *rlEnv {
	t.Helper()
	if c.Backend == "" {
		c.Backend = testkit.NewWSBackend(t).Server.URL
	}
	e := &rlEnv{t: t, b: &stampBuilder{}, backend: c.Backend}
	kit := testkit.StartProxy(t, c.String(), func(path string, _ *config.Config) (testkit.Server, error) {
		e.path, e.dir = path, filepath.Dir(path)
		if err := os.WriteFile(filepath.Join(e.dir, "stamp.bin"), []byte("stamp v1"), 0o600); err != nil {
			return nil, err
		}
		r, err := New(e.path, e.b.build, host.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		e.r = r
		t.Cleanup(func() { r.Close() }) // after the proxy stopped
		return r.Proxy(), nil
	})
	e.url, e.admin = kit.URL, kit.Admin
	return e
}

// write replaces proxy.toml the way editors do: a temporary file renamed
// over it.
func (e *rlEnv) write(c rlConf) {
	e.t.Helper()
	if c.Backend == "" {
		c.Backend = e.backend
	}
	e.writeRaw(c.String())
}

func (e *rlEnv) writeRaw(s string) {
	e.t.Helper()
	tmp := filepath.Join(e.dir, ".proxy.toml.swp")
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.path); err != nil {
		e.t.Fatal(err)
	}
}

// post asks the admin endpoint to reload and returns its status code and
// report.
func (e *rlEnv) post(query string) (int, Status) {
	e.t.Helper()
	resp, err := http.Post(e.admin+"/reload"+query, "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, st
}

func (e *rlEnv) status(path string) Status {
	e.t.Helper()
	resp, err := http.Get(e.admin + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// stamp does a GET through the proxy and returns the X-Stamp it got.
func (e *rlEnv) stamp(c *http.Client) string {
	e.t.Helper()
	resp, err := c.Get(e.url + "/")
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET: %s", resp.Status)
	}
	return resp.Header.Get("X-Stamp")
}

func TestReloadSwapsAndReports(t *testing.T) {
	e := rlStart(t, rlConf{Stamp: "A", Messages: true})
	c := testkit.Client()
	if got := e.stamp(c); got != "A" {
		t.Fatalf("stamp %q, want A", got)
	}
	st := e.status("/reload")
	if st.Generation != 1 || st.Config != e.path || st.Modules["stamp"] == "" || st.LastAttempt != nil {
		t.Fatalf("initial status %+v", st)
	}

	e.write(rlConf{Stamp: "B", Messages: true})
	code, st := e.post("")
	if code != 200 || st.Generation != 2 || st.LastResult != Loaded || st.LastTrigger != "admin" || st.Reloads != 1 || st.LastError != "" {
		t.Fatalf("reload: %d %+v", code, st)
	}
	if got := e.stamp(c); got != "B" {
		t.Fatalf("stamp after reload %q, want B", got)
	}
	// The first generation's chains are released once drained.
	testkit.Eventually(t, 2*time.Second, "generation 1 closed", func() bool { return e.b.closes.Load() == 1 })

	// The same bytes again: nothing is built.
	builds := e.b.builds.Load()
	code, st = e.post("")
	if code != 200 || st.LastResult != Unchanged || st.Generation != 2 || e.b.builds.Load() != builds {
		t.Fatalf("unchanged reload: %d %+v, %d builds", code, st, e.b.builds.Load()-builds)
	}
	// A changed module file is a change, even with the same config.
	os.WriteFile(filepath.Join(e.dir, "stamp.bin"), []byte("stamp v2"), 0o600)
	code, st = e.post("")
	if code != 200 || st.LastResult != Loaded || st.Generation != 3 {
		t.Fatalf("module change: %d %+v", code, st)
	}
	if st2 := e.status("/status"); st2.Generation != 3 || st2.Modules["stamp"] != st.Modules["stamp"] {
		t.Fatalf("GET /status %+v", st2)
	}
	// force rebuilds identical files.
	if code, st = e.post("?force=1"); code != 200 || st.LastResult != Loaded || st.Generation != 4 {
		t.Fatalf("forced reload: %d %+v", code, st)
	}
}

// A broken proxy.toml or a failing build is refused: the old generation
// keeps serving, the admin endpoint reports the error with its file and
// line or plugin, and the same failing files are not built again.
func TestReloadRefusesBrokenConfig(t *testing.T) {
	e := rlStart(t, rlConf{Stamp: "A", Messages: true})
	c := testkit.Client()

	good := rlConf{Stamp: "A", Messages: true, Backend: e.backend}.String()
	cases := []struct {
		name, conf, want string
	}{
		{"unknown key", strings.Replace(good, "reload_grace", "reload_graze", 1), e.path + ":3: server.reload_graze: unknown key"},
		{"syntax", good + "[[route]\n", e.path + ":"},
		{"bad reference", strings.Replace(good, `upstream = "app"`, `upstream = "nope"`, 1), `route[0].upstream: no [[upstream]] is named "nope"`},
		{"missing module", strings.Replace(good, "stamp.bin", "gone.bin", 1), `plugin "stamp": open ` + filepath.Join(e.dir, "gone.bin")},
		{"build fails", strings.Replace(good, `value = "A"`, `value = "B"`+"\n  fail = \"configure trapped\"", 1), `stamp: plugin "stamp" (stamp.bin): configure trapped`},
		{"listen busy", strings.Replace(good, `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", e.r.Proxy().AdminAddr().String()), 1), "host: server.listen: listen tcp"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.writeRaw(tc.conf)
			code, st := e.post("")
			if code != http.StatusUnprocessableEntity || st.LastResult != Failed || st.Generation != 1 || !strings.Contains(st.LastError, tc.want) {
				t.Fatalf("got %d %+v\nwant the error to contain %q", code, st, tc.want)
			}
			if st.Failures != uint64(2*i+1) {
				t.Errorf("failures = %d, want %d", st.Failures, 2*i+1)
			}
			if got := e.stamp(c); got != "A" {
				t.Fatalf("the old generation stopped serving: stamp %q", got)
			}
			// The same failing files again: reported, not rebuilt.
			built := e.b.builds.Load()
			code, st2 := e.post("")
			if code != http.StatusUnprocessableEntity || st2.LastError != st.LastError || e.b.builds.Load() != built {
				t.Fatalf("retry of the same failure: %d %+v, %d builds", code, st2, e.b.builds.Load()-built)
			}
		})
	}
	// Back to the serving files: nothing to do, and the error is cleared.
	e.writeRaw(good)
	code, st := e.post("")
	if code != 200 || st.LastResult != Unchanged || st.LastError != "" || st.Generation != 1 {
		t.Fatalf("after fixing: %d %+v", code, st)
	}
}

// The watcher reloads on a config renamed over the old one, on a module
// rewritten in place and on a module that a new config names; a chmod alone
// does nothing, and bursts of events make one reload.
func TestWatchReloads(t *testing.T) {
	e := rlStart(t, rlConf{Stamp: "A", Messages: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.r.Watch(ctx, 50*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	c := testkit.Client()
	waitGen := func(n uint64) {
		t.Helper()
		// The status is written just after the swap: wait for it, not for
		// the proxy's generation, so the checks below see this reload.
		testkit.Eventually(t, 5*time.Second, fmt.Sprintf("generation %d", n), func() bool {
			return e.r.Status().Generation >= n
		})
		if g, _ := e.r.Proxy().Generation(); g != n {
			t.Fatalf("generation %d, want %d", g, n)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the watcher start

	// Several writes in a burst: one reload.
	for _, s := range []string{"x", "y", "B"} {
		e.write(rlConf{Stamp: s, Messages: true})
	}
	waitGen(2)
	if got := e.stamp(c); got != "B" {
		t.Fatalf("stamp %q, want B", got)
	}
	if st := e.r.Status(); st.LastTrigger != "watch" {
		t.Errorf("trigger %q, want watch", st.LastTrigger)
	}

	// A module rewritten in place.
	os.WriteFile(filepath.Join(e.dir, "stamp.bin"), []byte("stamp v2"), 0o600)
	waitGen(3)

	// chmod and unrelated files: nothing.
	os.Chmod(e.path, 0o644)
	os.WriteFile(filepath.Join(e.dir, "other.txt"), []byte("x"), 0o600)
	time.Sleep(300 * time.Millisecond)
	waitGen(3)

	// A new config naming a module in another directory: that directory is
	// watched from then on.
	sub := filepath.Join(e.dir, "mods")
	os.Mkdir(sub, 0o700)
	os.WriteFile(filepath.Join(sub, "new.bin"), []byte("new v1"), 0o600)
	e.writeRaw(strings.Replace(rlConf{Stamp: "C", Messages: true, Backend: e.backend}.String(), "stamp.bin", "mods/new.bin", 1))
	waitGen(4)
	tmp := filepath.Join(sub, "new.bin.tmp")
	os.WriteFile(tmp, []byte("new v2"), 0o600)
	os.Rename(tmp, filepath.Join(sub, "new.bin"))
	waitGen(5)
	if st := e.r.Status(); st.Reloads != 4 || st.Failures != 0 {
		t.Errorf("status %+v", st)
	}
}

// In-flight requests finish on the generation they started on, open
// WebSockets carry on with the new chain, and the old generation's chains
// are released only when the last request is done.
func TestReloadInFlight(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/", echoOrPlain)
	srv := &http.Server{Handler: mux}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	e := rlStart(t, rlConf{Stamp: "A", Messages: true, Backend: "http://" + ln.Addr().String()})
	ws, _ := testkit.DialWS(t, nil, "ws"+strings.TrimPrefix(e.url, "http")+"/ws", nil)
	defer ws.Close()
	wsEcho(t, ws, "one", "one [A]")

	res := make(chan string, 1)
	go func() {
		resp, err := http.Get(e.url + "/slow")
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- resp.Header.Get("X-Stamp") + " " + string(b)
	}()
	<-entered
	e.write(rlConf{Stamp: "B", Messages: true})
	if code, st := e.post(""); code != 200 || st.Generation != 2 {
		t.Fatalf("reload %d %+v", code, st)
	}
	wsEcho(t, ws, "two", "two [B]")
	time.Sleep(50 * time.Millisecond)
	if n := e.b.closes.Load(); n != 0 {
		t.Fatalf("generation 1 released while a request still runs on it")
	}
	close(release)
	if got := <-res; got != "A slow" {
		t.Errorf("in-flight request got %q, want the old chain's stamp", got)
	}
	testkit.Eventually(t, 2*time.Second, "generation 1 released", func() bool { return e.b.closes.Load() == 1 })
	wsEcho(t, ws, "three", "three [B]")
}

// echoOrPlain echoes WebSocket messages and answers plain requests with
// "plain", like pxEchoWS, as a handler to mount beside others.
func echoOrPlain(w http.ResponseWriter, r *http.Request) {
	if websocket.IsWebSocketUpgrade(r) {
		up := websocket.Upgrader{}
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
	}
	io.WriteString(w, "plain")
}

func wsEcho(t *testing.T, c *websocket.Conn, send, want string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
		t.Fatalf("write %q: %v", send, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, got, err := c.ReadMessage()
	if err != nil || string(got) != want {
		t.Fatalf("echo of %q: %q %v, want %q", send, got, err, want)
	}
}

// Sessions a reload can no longer serve as they are close with 1001 after
// server.reload_grace, not before; the others keep running. A session of a
// removed route keeps its filters during the grace period.
func TestReloadClosesSessionsAfterGrace(t *testing.T) {
	const grace = 400 * time.Millisecond
	e := rlStart(t, rlConf{Stamp: "A", Messages: false, Grace: grace.String()})
	wsURL := "ws" + strings.TrimPrefix(e.url, "http") + "/ws"

	// Raw session (no message hooks), then the route gains message hooks.
	raw, _ := testkit.DialWS(t, nil, wsURL, nil)
	defer raw.Close()
	wsEcho(t, raw, "raw", "raw")
	e.write(rlConf{Stamp: "B", Messages: true, Grace: grace.String()})
	start := time.Now()
	if code, _ := e.post(""); code != 200 {
		t.Fatal("reload failed")
	}
	// Filtered from now on for new sessions; the raw one still echoes
	// unfiltered during the grace period, then gets 1001.
	wsEcho(t, raw, "still raw", "still raw")
	ce := testkit.ReadClose(t, raw)
	if ce.Code != websocket.CloseGoingAway {
		t.Fatalf("raw session: close %d, want 1001", ce.Code)
	}
	if d := time.Since(start); d < grace-50*time.Millisecond {
		t.Errorf("raw session closed after %v, before the grace of %v", d, grace)
	}

	// A filtered session whose route is removed: its messages still go
	// through the route's last chain until the grace period ends.
	kept, _ := testkit.DialWS(t, nil, wsURL, nil)
	defer kept.Close()
	wsEcho(t, kept, "hello", "hello [B]")
	e.write(rlConf{Stamp: "C", Messages: true, Grace: grace.String(), Route: "renamed"})
	start = time.Now()
	if code, st := e.post(""); code != 200 {
		t.Fatalf("reload failed: %+v", st)
	}
	wsEcho(t, kept, "during grace", "during grace [B]")
	ce = testkit.ReadClose(t, kept)
	if ce.Code != websocket.CloseGoingAway || time.Since(start) < grace-50*time.Millisecond {
		t.Fatalf("removed route's session: close %d after %v", ce.Code, time.Since(start))
	}

	// A session whose route keeps its upstream and filters survives many
	// reloads.
	live, _ := testkit.DialWS(t, nil, wsURL, nil)
	defer live.Close()
	for i, s := range []string{"D", "E", "F"} {
		e.write(rlConf{Stamp: s, Messages: true, Grace: grace.String(), Route: "renamed"})
		if code, _ := e.post(""); code != 200 {
			t.Fatal("reload failed")
		}
		wsEcho(t, live, fmt.Sprint(i), fmt.Sprintf("%d [%s]", i, s))
	}
	time.Sleep(grace + 100*time.Millisecond)
	wsEcho(t, live, "end", "end [F]")
	// Every retired generation was released: no session pins one.
	testkit.Eventually(t, 2*time.Second, "retired generations released", func() bool {
		return e.b.closes.Load() == e.b.builds.Load()-1
	})
}

// A changed server.listen serves on the new socket before the old one stops
// accepting; a keep-alive connection accepted on the old one keeps working.
// The admin listener keeps its socket.
func TestReloadMovesListener(t *testing.T) {
	e := rlStart(t, rlConf{Stamp: "A", Messages: true})
	oldAddr, adminAddr := e.r.Proxy().Addr().String(), e.r.Proxy().AdminAddr().String()
	keep := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	if got := e.stamp(keep); got != "A" {
		t.Fatal(got)
	}
	newAddr := testkit.DeadAddr(t)
	e.write(rlConf{Stamp: "B", Messages: true, Listen: newAddr})
	if code, st := e.post(""); code != 200 {
		t.Fatalf("reload %+v", st)
	}
	if got := e.r.Proxy().Addr().String(); got != newAddr {
		t.Fatalf("Addr %s, want %s", got, newAddr)
	}
	if got := e.r.Proxy().AdminAddr().String(); got != adminAddr {
		t.Fatalf("admin moved to %s", got)
	}
	// The kept connection on the old socket still works.
	if got := e.stamp(keep); got != "B" {
		t.Fatalf("old connection: %q", got)
	}
	if _, err := net.DialTimeout("tcp", oldAddr, time.Second); err == nil {
		t.Error("the old address still accepts")
	}
	e.url = "http://" + newAddr
	if got := e.stamp(testkit.Client()); got != "B" {
		t.Fatalf("new address: %q", got)
	}
}

// A reload with renewed certificate files serves the new certificate to new
// handshakes; a connection established before keeps working.
func TestReloadRenewsCertificate(t *testing.T) {
	certA, keyA, poolA := testkit.Cert(t)
	certB, keyB, _ := testkit.Cert(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile(t, certA, cert)
	copyFile(t, keyA, key)
	extra := fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", cert, key)
	e := rlStart(t, rlConf{Stamp: "A", Messages: true, Extra: extra})

	poolA.AppendCertsFromPEM(mustRead(t, certB))
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolA}}}
	seen := func(c *http.Client) []byte {
		resp, err := c.Get(e.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Raw
	}
	before := seen(old)

	copyFile(t, certB, cert)
	copyFile(t, keyB, key)
	if code, st := e.post(""); code != 200 || st.LastResult != Loaded {
		t.Fatalf("reload: %d %+v", code, st)
	}
	if got := seen(old); !bytes.Equal(got, before) {
		t.Error("the established connection changed certificate")
	}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolA}}}
	if got := seen(fresh); bytes.Equal(got, before) {
		t.Error("a new handshake still gets the old certificate")
	}
	// Turning TLS off is refused (it needs a restart); the proxy serves on.
	e.write(rlConf{Stamp: "A", Messages: true})
	code, st := e.post("")
	if code != http.StatusUnprocessableEntity || !strings.Contains(st.LastError, "needs a restart") {
		t.Fatalf("TLS off: %d %+v", code, st)
	}
	seen(fresh)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, mustRead(t, from), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A closed Reloader refuses to reload.
func TestReloadAfterClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.toml")
	os.WriteFile(filepath.Join(dir, "stamp.bin"), []byte("x"), 0o600)
	os.WriteFile(path, []byte(rlConf{Stamp: "A", Backend: "http://127.0.0.1:1"}.String()), 0o600)
	b := &stampBuilder{}
	r, err := New(path, b.build, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if b.closes.Load() != 1 {
		t.Errorf("Close released %d generations, want 1", b.closes.Load())
	}
	if _, err := r.Reload("test", true); err == nil {
		t.Fatal("Reload after Close succeeded")
	}
}

// A reload in progress answers a second trigger at once, with 409 on the
// admin endpoint, instead of queueing it; the status shows what runs.
func TestReloadInProgressAnswersAtOnce(t *testing.T) {
	e := rlStart(t, rlConf{Stamp: "A"})
	e.b.hold, e.b.entered = make(chan struct{}), make(chan struct{}, 1)
	e.write(rlConf{Stamp: "B"})
	first := make(chan Status, 1)
	go func() {
		st, _ := e.r.Reload("test", false)
		first <- st
	}()
	<-e.b.entered

	start := time.Now()
	code, st := e.post("")
	if took := time.Since(start); took > time.Second {
		t.Errorf("the second trigger waited %v", took)
	}
	if code != http.StatusConflict || !st.InProgress || st.InProgressTrigger != "test" {
		t.Errorf("POST /reload during a reload: %d %+v, want 409 with the reload in progress", code, st)
	}
	if _, err := e.r.Reload("SIGHUP", false); !errors.Is(err, ErrInProgress) {
		t.Errorf("Reload during a reload: %v, want ErrInProgress", err)
	}

	close(e.b.hold)
	if st := <-first; st.LastResult != Loaded || st.InProgress {
		t.Fatalf("first reload: %+v", st)
	}
	if got := e.stamp(http.DefaultClient); got != "B" {
		t.Errorf("stamp %q after the reload, want B", got)
	}
	if b := e.b.builds.Load(); b != 2 {
		t.Errorf("%d builds, want 2: the refused triggers built nothing", b)
	}
}
