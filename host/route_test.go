package host

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestRouting(t *testing.T) {
	names := []string{"any-root", "any-api", "any-api-v2", "exact", "wild", "deep-wild"}
	conf := ""
	for _, n := range names {
		conf += fmt.Sprintf("[[upstream]]\nname = %q\ntargets = [%q]\n", n, pxBackend(t, n).URL)
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
	c := pxClient()
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
		status, body, _ := pxGet(t, c, px.url+tt.path, "Host", tt.host)
		if status != 200 || !strings.HasPrefix(body, tt.want+" ") {
			t.Errorf("%s%s: got %d %q, want %s", tt.host, tt.path, status, body, tt.want)
		}
		if tt.path == "/api/v2/users?x=1" && body != "any-api-v2 /api/v2/users?x=1" {
			t.Errorf("path and query not kept: %q", body)
		}
	}
}

func TestNoRoute(t *testing.T) {
	b := pxBackend(t, "b")
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "b"
targets = [%q]
[[route]]
host = "only.example.com"
upstream = "b"
`, b.URL), nil)
	status, _, h := pxGet(t, pxClient(), px.url+"/", "Host", "elsewhere.test")
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
	c := pxClient()
	for _, tt := range []struct {
		path   string
		status int
		loc    string
	}{
		{"/old/page?q=1", 302, "https://new.example.com/"},
		{"/moved/a/b?q=1&r=2", 301, "https://new.example.com/base/moved/a/b?q=1&r=2"},
		{"/x", 308, "https://other.example.com/x"},
	} {
		status, _, h := pxGet(t, c, px.url+tt.path)
		if status != tt.status || h.Get("Location") != tt.loc {
			t.Errorf("%s: got %d %q, want %d %q", tt.path, status, h.Get("Location"), tt.status, tt.loc)
		}
	}
}

func TestApplySwapsRoutes(t *testing.T) {
	a, b := pxBackend(t, "a"), pxBackend(t, "b")
	conf := func(backend string) string {
		return fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", backend)
	}
	px := pxStart(t, conf(a.URL), nil)
	c := pxClient()
	if _, body, _ := pxGet(t, c, px.url+"/"); !strings.HasPrefix(body, "a ") {
		t.Fatalf("before Apply: %q", body)
	}
	old := px.gen.Load()
	cfg := mustParse(t, conf(b.URL))
	if err := px.Apply(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := pxGet(t, c, px.url+"/"); !strings.HasPrefix(body, "b ") {
		t.Fatalf("after Apply: %q", body)
	}
	// The old generation drains (nothing holds it) and is closed.
	pxEventually(t, 2e9, "old generation drained", func() bool {
		select {
		case <-old.drained:
			return true
		default:
			return false
		}
	})
}
