package host

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/testkit"
)

func TestRouting(t *testing.T) {
	names := []string{"any-root", "any-api", "any-api-v2", "exact", "wild", "deep-wild"}
	conf := ""
	for _, n := range names {
		conf += fmt.Sprintf("[[upstream]]\nname = %q\ntargets = [%q]\n", n, testkit.NameBackend(t, n).URL)
	}
	conf += `
[[route]]
path_prefix = "/"
upstream = "any-root"
[[route]]
host = "*"
path_prefix = "/api/"
upstream = "any-api"
[[route]]
path_prefix = "/api/v2/"
upstream = "any-api-v2"
[[route]]
host = "api.example.com"
path_prefix = "/"
upstream = "exact"
[[route]]
host = "*.example.com"
path_prefix = "/"
upstream = "wild"
[[route]]
host = "*.eu.example.com"
path_prefix = "/shop/"
upstream = "deep-wild"
`
	px := pxStart(t, conf, nil)
	c := testkit.Client()
	for _, tt := range []struct{ host, path, want string }{
		{"other.test", "/", "any-root"},
		{"other.test", "/index.html", "any-root"},
		{"other.test", "/api/users", "any-api"},
		{"other.test", "/api/v2/users?x=1", "any-api-v2"},
		{"other.test", "/api", "any-root"}, // "/api/" does not match "/api"
		{"api.example.com", "/api/users", "exact"},
		{"API.Example.COM:8443", "/", "exact"}, // case and port ignored
		{"www.example.com", "/api/v2/x", "wild"},
		{"a.b.example.com", "/", "wild"},
		{"example.com", "/", "any-root"}, // "*.example.com" needs a subdomain
		{"x.eu.example.com", "/shop/cart", "deep-wild"},
		{"x.eu.example.com", "/blog", "wild"}, // falls through to the shorter wildcard
	} {
		status, body, _ := testkit.Get(t, c, px.url+tt.path, "Host", tt.host)
		if status != 200 || !strings.HasPrefix(body, tt.want+" ") {
			t.Errorf("%s%s: got %d %q, want %s", tt.host, tt.path, status, body, tt.want)
		}
		if tt.path == "/api/v2/users?x=1" && body != "any-api-v2 /api/v2/users?x=1" {
			t.Errorf("path and query not kept: %q", body)
		}
	}
}

func TestNoRoute(t *testing.T) {
	b := testkit.NameBackend(t, "b")
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "b"
targets = [%q]
[[route]]
host = "only.example.com"
upstream = "b"
`, b.URL), nil)
	status, _, h := testkit.Get(t, testkit.Client(), px.url+"/", "Host", "elsewhere.test")
	if status != http.StatusNotFound {
		t.Fatalf("status %d, want 404", status)
	}
	if h.Get("X-Request-Id") == "" {
		t.Error("a 404 should carry X-Request-Id too")
	}
}

func TestRedirect(t *testing.T) {
	px := pxStart(t, `
[[route]]
path_prefix = "/old/"
redirect = "https://new.example.com/"
[[route]]
path_prefix = "/moved/"
redirect = "https://new.example.com/base/"
status = 301
keep_path = true
[[route]]
path_prefix = "/"
redirect = "https://other.example.com"
status = 308
keep_path = true
`, nil)
	c := testkit.Client()
	for _, tt := range []struct {
		path   string
		status int
		loc    string
	}{
		{"/old/page?q=1", 302, "https://new.example.com/"},
		{"/moved/a/b?q=1&r=2", 301, "https://new.example.com/base/moved/a/b?q=1&r=2"},
		{"/x", 308, "https://other.example.com/x"},
	} {
		status, _, h := testkit.Get(t, c, px.url+tt.path)
		if status != tt.status || h.Get("Location") != tt.loc {
			t.Errorf("%s: got %d %q, want %d %q", tt.path, status, h.Get("Location"), tt.status, tt.loc)
		}
	}
}

func TestApplySwapsRoutes(t *testing.T) {
	a, b := testkit.NameBackend(t, "a"), testkit.NameBackend(t, "b")
	conf := func(backend string) string {
		return fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", backend)
	}
	px := pxStart(t, conf(a.URL), nil)
	c := testkit.Client()
	if _, body, _ := testkit.Get(t, c, px.url+"/"); !strings.HasPrefix(body, "a ") {
		t.Fatalf("before Apply: %q", body)
	}
	old := px.gen.Load()
	cfg := mustParse(t, conf(b.URL))
	if _, err := px.Apply(cfg, Chains{}); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := testkit.Get(t, c, px.url+"/"); !strings.HasPrefix(body, "b ") {
		t.Fatalf("after Apply: %q", body)
	}
	// The old generation drains (nothing holds it) and is closed.
	testkit.Eventually(t, 2e9, "old generation drained", func() bool {
		select {
		case <-old.drained:
			return true
		default:
			return false
		}
	})
}

// A request keeps the generation it started on; the old generation is
// closed only when that request ends.
func TestApplyDrainsInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		fmt.Fprint(w, "old")
	}))
	t.Cleanup(slow.Close)
	b := testkit.NameBackend(t, "new")
	conf := "[server]\nlisten = \"127.0.0.1:0\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n"
	px := pxStart(t, fmt.Sprintf(conf, slow.URL), nil)
	res := make(chan string, 1)
	go func() {
		_, body, _ := testkit.Get(t, testkit.Client(), px.url+"/")
		res <- body
	}()
	<-entered
	old := px.gen.Load()
	if _, err := px.Apply(mustParse(t, fmt.Sprintf(conf, b.URL)), Chains{}); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := testkit.Get(t, testkit.Client(), px.url+"/"); !strings.HasPrefix(body, "new ") {
		t.Errorf("new requests after Apply: %q", body)
	}
	select {
	case <-old.drained:
		t.Fatal("old generation drained while a request still uses it")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if body := <-res; body != "old" {
		t.Errorf("in-flight request: %q", body)
	}
	testkit.Eventually(t, 2*time.Second, "old generation drained", func() bool {
		select {
		case <-old.drained:
			return true
		default:
			return false
		}
	})
}

// A reload that removes a route closes its WebSockets with 1001 and keeps
// the others.
func TestApplyClosesWebSocketsOfRemovedRoutes(t *testing.T) {
	back := testkit.NewWSBackend(t).Server
	conf := "[server]\nlisten = \"127.0.0.1:0\"\nreload_grace = \"0s\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n" +
		"[[route]]\nname = \"keep\"\npath_prefix = \"/keep/\"\nupstream = \"u\"\n"
	gone := "[[route]]\nname = \"gone\"\npath_prefix = \"/gone/\"\nupstream = \"u\"\n"
	px := pxStart(t, fmt.Sprintf(conf+gone, back.URL), nil)
	dial := func(path string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+px.Addr().String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	kept, closed := dial("/keep/ws"), dial("/gone/ws")
	if _, err := px.Apply(mustParse(t, fmt.Sprintf(conf, back.URL)), Chains{}); err != nil {
		t.Fatal(err)
	}
	closed.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := closed.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("session on the removed route read %v, want close 1001", err)
	}
	if err := kept.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	kept.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := kept.ReadMessage(); err != nil || string(msg) != "still here" {
		t.Errorf("session on the kept route: %q %v", msg, err)
	}
}
