package examples_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
)

// benchConfig puts each filter alone on a route named after it.
const benchConfig = `
[[upstream]]
name = "u"
targets = ["http://127.0.0.1:9"]

[[route]]
name = "auth"
path_prefix = "/auth/"
upstream = "u"
plugins = ["auth"]

[[route]]
name = "headers"
path_prefix = "/headers/"
upstream = "u"
plugins = ["headers"]

[[route]]
name = "headers-go"
path_prefix = "/headers-go/"
upstream = "u"
plugins = ["headers-go"]

[[route]]
name = "redact"
path_prefix = "/redact/"
upstream = "u"
plugins = ["redact"]

[[route]]
name = "guard"
path_prefix = "/guard/"
upstream = "u"
plugins = ["guard"]

[[route]]
name = "noop"
path_prefix = "/noop/"
upstream = "u"
plugins = ["noop"]

[[route]]
name = "noop-go"
path_prefix = "/noop-go/"
upstream = "u"
plugins = ["noop-go"]

[[plugin]]
name = "auth"
module = "{{dir}}/auth.wasm"
timeout = "1s"
  [plugin.config]
  tokens = ["demo-token"]
  jwt_secret = "s3cret"

[[plugin]]
name = "headers"
module = "{{dir}}/headers.wasm"
timeout = "1s"
  [plugin.config.request]
  set = { "X-Env" = "prod" }
  remove = ["X-Internal"]

[[plugin]]
name = "headers-go"
module = "{{dir}}/headers.go.wasm"
timeout = "1s"
  [plugin.config.request]
  set = { "X-Env" = "prod" }
  remove = ["X-Internal"]

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
  max_size = 4096
  deny_prefixes = ["DROP"]
  rate = 1000000

[[plugin]]
name = "noop"
module = "{{dir}}/noop.wasm"
timeout = "1s"

[[plugin]]
name = "noop-go"
module = "{{dir}}/noop.go.wasm"
timeout = "1s"
`

// benchChains loads every example with the real plugin loader and returns
// the chain of each route.
func benchChains(b *testing.B) map[string]filter.Chain {
	modules := buildFilters(b)
	pairs := []string{}
	for file, path := range modules {
		abs, err := filepath.Abs(path)
		if err != nil {
			b.Fatal(err)
		}
		pairs = append(pairs, "{{dir}}/"+file, filepath.ToSlash(abs))
	}
	cfg, err := config.Parse([]byte(strings.NewReplacer(pairs...).Replace(benchConfig)), "bench.toml")
	if err != nil {
		b.Fatal(err)
	}
	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() { loader.Close() })
	set, err := loader.Load(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { set.Close() })
	return set.Chains()
}

// BenchmarkFilters measures one hook call of each example through the real
// plugin chain (pool, deadline, host functions, guest): what a filter adds
// to a request or a message, without the network.
//
//	go test -run '^$' -bench Filters -benchmem .
func BenchmarkFilters(b *testing.B) {
	chains := benchChains(b)

	request := func(route string, header http.Header, check func(*filter.Exchange)) func(*testing.B) {
		return func(b *testing.B) {
			c := chains[route]
			r, _ := http.NewRequest("GET", "http://example.com/"+route+"/x?a=1", nil)
			x := &filter.Exchange{Request: r, Route: route, ClientAddr: "127.0.0.1:5000", Scheme: "http"}
			b.ReportAllocs()
			for range b.N {
				r.Header = header.Clone()
				if reply := c.OnRequestHeaders(x); reply != nil {
					b.Fatalf("%d %s", reply.Status, reply.Body)
				}
			}
			check(x)
		}
	}
	jwt := jwt(`{"sub":"alice","exp":` + "4102444800" + `}`)
	b.Run("auth/static-token", request("auth", http.Header{"Authorization": {"Bearer demo-token"}}, func(x *filter.Exchange) {
		if x.Request.Header.Get("X-User") != "static" {
			b.Fatal("no X-User")
		}
	}))
	b.Run("auth/jwt", request("auth", http.Header{"Authorization": {"Bearer " + jwt}}, func(x *filter.Exchange) {
		if x.Request.Header.Get("X-User") != "alice" {
			b.Fatal("no X-User")
		}
	}))
	for _, route := range []string{"headers", "headers-go"} {
		b.Run(route, request(route, http.Header{"X-Internal": {"1"}, "Accept": {"*/*"}}, func(x *filter.Exchange) {
			if x.Request.Header.Get("X-Env") != "prod" {
				b.Fatal("no X-Env")
			}
		}))
	}

	message := func(route, payload string, want func(*filter.Message) bool) func(*testing.B) {
		return func(b *testing.B) {
			c := chains[route]
			s := &filter.Session{ID: "bench", Route: route, ClientAddr: "127.0.0.1:5000"}
			in := []byte(payload)
			m := &filter.Message{Direction: filter.ClientToUpstream}
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for range b.N {
				m.Payload = in
				if v := c.OnMessage(s, m); v.Action != filter.MessagePass {
					b.Fatalf("verdict %+v", v)
				}
			}
			if !want(m) {
				b.Fatalf("payload %q", m.Payload)
			}
		}
	}
	chat := `{"type":"chat","user":"ann","text":"hello there, this is a message of a typical size","meta":{"ts":1700000000}}`
	same := func(m *filter.Message) bool { return string(m.Payload) == chat }
	b.Run("noop", message("noop", chat, same))
	b.Run("noop-go", message("noop-go", chat, same))
	b.Run("guard", message("guard", chat, same))
	b.Run("redact/nothing-to-mask", message("redact", chat, same))
	b.Run("redact/masks", message("redact", strings.Replace(chat, `"ts"`, `"password"`, 1), func(m *filter.Message) bool {
		return strings.Contains(string(m.Payload), `"password":"***"`)
	}))
}

// redactBenchConfig puts each build of the redact filter on its own route,
// configured as sluice-bench configures it.
const redactBenchConfig = `
[[upstream]]
name = "u"
targets = ["http://127.0.0.1:9"]
{{routes}}
`

// benchWSMessage builds the JSON text message sluice-bench sends (its
// wsMessage): exactly size bytes, a password field and the word "secret"
// followed by a run of 'x' that fills the message.
func benchWSMessage(size int) string {
	head := `{"user":"alice","password":"hunter2","text":"a secret `
	tail := `"}`
	return head + strings.Repeat("x", max(size-len(head)-len(tail), 0)) + tail
}

// redactModules returns the redact module of each build: "tinygo" (or Go
// without TinyGo), "go" and, when Debian's cargo is installed, "rust". A
// module left next to the sources by examples/build.sh is used when it is
// newer than them; the Rust one is rebuilt with examples/build-rust.sh,
// which is incremental.
func redactModules(b *testing.B) map[string]string {
	mods := map[string]string{"tinygo": buildFilters(b)["redact.wasm"]}
	goWasm := filepath.Join("redact", "redact.go.wasm")
	src := newestSource("redact", filepath.Join("..", "sdk", "go"), "internal")
	if info, err := os.Stat(goWasm); err != nil || !info.ModTime().After(src) {
		goWasm = filepath.Join(b.TempDir(), "redact.go.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", goWasm, ".")
		cmd.Dir, cmd.Env = "redact", append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build redact with Go: %v\n%s", err, out)
		}
	}
	mods["go"] = goWasm
	if _, err := os.Stat("/usr/bin/cargo"); err == nil {
		if out, err := exec.Command("bash", "build-rust.sh", "redact").CombinedOutput(); err != nil {
			b.Fatalf("build redact with Rust: %v\n%s", err, out)
		}
		mods["rust"] = filepath.Join("redact", "redact.rust.wasm")
	}
	return mods
}

// BenchmarkFiltersRedact measures one message hook call of the redact
// filter through the real plugin chain, in each build, on the messages
// sluice-bench sends (64 B and 16 KiB) and on a 16 KiB message with
// nothing to mask.
//
//	go test -run '^$' -bench FiltersRedact -benchmem .
func BenchmarkFiltersRedact(b *testing.B) {
	benchRedact(b, redactModules(b), []string{"tinygo", "go", "rust"})
}

// benchRedact runs the redact benchmarks on the modules of builds (named
// in mods; a build without a module is skipped).
func benchRedact(b *testing.B, mods map[string]string, builds []string) {
	var routes strings.Builder
	for _, name := range builds {
		path, ok := mods[name]
		if !ok {
			continue
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&routes, `
[[route]]
name = "redact-%[1]s"
path_prefix = "/redact-%[1]s/"
upstream = "u"
plugins = ["redact-%[1]s"]

[[plugin]]
name = "redact-%[1]s"
module = %[2]q
timeout = "1s"
  [plugin.config]
  fields = ["password", "ssn"]
  words = ["secret"]
`, name, filepath.ToSlash(abs))
	}
	cfg, err := config.Parse([]byte(strings.Replace(redactBenchConfig, "{{routes}}", routes.String(), 1)), "bench.toml")
	if err != nil {
		b.Fatal(err)
	}
	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: slog.New(slog.DiscardHandler)})
	defer loader.Close()
	set, err := loader.Load(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	chains := set.Chains()

	clean := `{"user":"alice","text":"` + strings.Repeat("lorem ipsum dolor sit amet, ", 16<<10/28) + `"}`
	for _, name := range builds {
		if _, ok := mods[name]; !ok {
			b.Logf("redact-%s: not built", name)
			continue
		}
		for _, tc := range []struct {
			label, payload string
			masked         bool
		}{
			{"64B", benchWSMessage(64), true},
			{"16KiB", benchWSMessage(16 << 10), true},
			{"16KiB-clean", clean, false},
		} {
			b.Run(name+"/"+tc.label, func(b *testing.B) {
				c := chains["redact-"+name]
				s := &filter.Session{ID: "bench", Route: "redact-" + name, ClientAddr: "127.0.0.1:5000"}
				in := []byte(tc.payload)
				m := &filter.Message{Direction: filter.ClientToUpstream}
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for range b.N {
					m.Payload = in
					if v := c.OnMessage(s, m); v.Action != filter.MessagePass {
						b.Fatalf("verdict %+v", v)
					}
				}
				got := string(m.Payload)
				if tc.masked && (strings.Contains(got, "hunter2") || !strings.Contains(got, `"password":"***","text":"a *** x`)) ||
					!tc.masked && got != tc.payload {
					b.Fatalf("payload %.80q", got)
				}
			})
		}
	}
}
