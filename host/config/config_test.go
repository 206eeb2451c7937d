package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const base = `
[[upstream]]
name = "app"
targets = ["http://127.0.0.1:9001"]

[[plugin]]
name = "auth"
module = "auth.wasm"
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(base+`
[[route]]
upstream = "app"
plugins = ["auth"]

[[route]]
host = "Old.Example.com"
redirect = "https://new.example.com/"
`), "proxy.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if s.Listen != "127.0.0.1:8080" || s.ReadHeaderTimeout.Duration != 10*time.Second ||
		s.IdleTimeout.Duration != 120*time.Second || s.MaxHeaderBytes != 64<<10 ||
		s.ShutdownGrace.Duration != 10*time.Second || s.ReadTimeout.Duration != 0 {
		t.Errorf("server defaults: %+v", s)
	}
	if ws := s.WebSocket; ws.MaxMessageSize != 1<<20 || ws.PingInterval.Duration != 30*time.Second || ws.IdleTimeout.Duration != 0 ||
		ws.WriteTimeout.Duration != 10*time.Second || ws.WriteBuffer != 256<<10 || !ws.Compression || !ws.CompressionContextTakeover {
		t.Errorf("websocket defaults: %+v", ws)
	}
	u := c.Upstreams[0]
	if u.Balance != "round_robin" || u.ConnectTimeout.Duration != 5*time.Second || u.ResponseTimeout.Duration != 30*time.Second ||
		u.MaxIdleConns != 256 || u.PassiveFailures != 3 || u.PassiveEjectFor.Duration != 10*time.Second {
		t.Errorf("upstream defaults: %+v", u)
	}
	if h := u.Health; h.Interval.Duration != 5*time.Second || h.Timeout.Duration != 2*time.Second ||
		h.HealthyThreshold != 2 || h.UnhealthyThreshold != 3 {
		t.Errorf("health defaults: %+v", h)
	}
	if p := c.Plugins[0]; p.OnError != "deny" || p.MemoryLimit != 16<<20 || p.Timeout.Duration != 10*time.Millisecond || p.PoolSize <= 0 {
		t.Errorf("plugin defaults: %+v", p)
	}
	if r := c.Routes[0]; r.Name != "*/" || r.PathPrefix != "/" {
		t.Errorf("route[0] defaults: %+v", r)
	}
	if r := c.Routes[1]; r.Name != "old.example.com/" || r.Status != 302 || r.Host != "old.example.com" {
		t.Errorf("route[1] defaults: %+v", r)
	}
}

func TestExplicitZeroTurnsOff(t *testing.T) {
	c, err := Parse([]byte(base+`
[server]
read_header_timeout = "0s"
[server.websocket]
ping_interval = "0s"
[[route]]
upstream = "app"
`), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ReadHeaderTimeout.Duration != 0 || c.Server.WebSocket.PingInterval.Duration != 0 {
		t.Errorf("explicit zero replaced by a default: %+v", c.Server)
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "65536": 65536, "12B": 12, "64KiB": 64 << 10, "2KB": 2000, "16MiB": 16 << 20,
		"3MB": 3e6, "1GiB": 1 << 30, "2GB": 2e9, "16 MiB": 16 << 20,
	} {
		var s Size
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("Size(%q) = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "-1", "12 parsecs", "1TiB"} {
		var s Size
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("Size(%q) = %d, want an error", in, s)
		}
	}
	c, err := Parse([]byte("[server]\nmax_header_bytes = 9000\n"), "p.toml")
	if err != nil || c.Server.MaxHeaderBytes != 9000 {
		t.Errorf("integer size: %v %v", c, err)
	}
}

// TestBadConfigs checks that each mistake is reported with the file, the
// key path and the line the user must fix.
func TestBadConfigs(t *testing.T) {
	route := "\n[[route]]\nupstream = \"app\"\n" // keeps files otherwise valid
	tests := []struct {
		name string
		toml string
		want []string // substrings of the error, one per expected problem
	}{
		{"syntax", "[server\nlisten = 1", []string{"p.toml:2: expected"}},
		{"unknown top-level table", base + route + "[servr]\nlisten = \"x:1\"\n", []string{`p.toml:12: servr: unknown key "servr"`}},
		{"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\nlsten = \"x\"\n", []string{`p.toml:3: server.lsten: unknown key "lsten"`}},
		{"unknown key in second route", base + route + "[[route]]\npath_prefix = \"/b\"\nupstream = \"app\"\ncolour = 1\n",
			[]string{`p.toml:15: route[1].colour: unknown key "colour"`}},
		{"unknown key in inline table", base + route + "[[upstream]]\nname = \"b\"\ntargets = [\"http://h:1\"]\nhealth = { path = \"/h\", intervl = \"1s\" }\n",
			[]string{`p.toml:15: upstream[1].health.intervl: unknown key "intervl"`}},
		{"wrong type", base + route + "[[route]]\npath_prefix = \"/b\"\nupstream = 7\n",
			[]string{`p.toml:14: route[1].upstream: incompatible types`}},
		{"missing upstream", base + "\n[[route]]\nupstream = \"app\"\n[[route]]\npath_prefix = \"/x\"\nupstream = \"nope\"\n",
			[]string{`p.toml:14: route[1].upstream: no [[upstream]] is named "nope"`}},
		{"missing plugin", base + "[[route]]\nupstream = \"app\"\nplugins = [\"auth\", \"redact\"]\n",
			[]string{`p.toml:11: route[0].plugins[1]: no [[plugin]] is named "redact"`}},
		{"bad duration", base + route + "[server]\nidle_timeout = \"5 minutes\"\n",
			[]string{`p.toml:13: server.idle_timeout: invalid duration "5 minutes"`}},
		{"integer duration", base + route + "[server]\nidle_timeout = 5\n",
			[]string{`p.toml:13: server.idle_timeout: invalid duration "5"`}},
		{"bad size", base + route + "[server.websocket]\nmax_message_size = \"1 lot\"\n",
			[]string{`p.toml:13: server.websocket.max_message_size: invalid size "1 lot"`}},
		{"bad address", base + route + "[server]\nlisten = \"8080\"\n",
			[]string{`p.toml:13: server.listen: bad address "8080"`}},
		{"duplicate upstream", base + route + "[[upstream]]\nname = \"app\"\ntargets = [\"http://h:1\"]\n",
			[]string{`p.toml:13: upstream[1].name: duplicate upstream name "app"`}},
		{"duplicate plugin", base + route + "[[plugin]]\nname = \"auth\"\nmodule = \"x.wasm\"\n",
			[]string{`p.toml:13: plugin[1].name: duplicate plugin name "auth"`}},
		{"duplicate route name", base + route + "[[route]]\nname = \"*/\"\npath_prefix = \"/b\"\nupstream = \"app\"\n",
			[]string{`p.toml:13: route[1].name: duplicate route name "*/"`}},
		{"duplicate match", base + route + "[[route]]\nname = \"again\"\nhost = \"*\"\nupstream = \"app\"\n",
			[]string{`p.toml:12: route[1]: matches the same host and path_prefix as route[0]`}},
		{"both upstream and redirect", base + "[[route]]\nupstream = \"app\"\nredirect = \"https://x/\"\n",
			[]string{`p.toml:9: route[0]: has both upstream and redirect`}},
		{"neither upstream nor redirect", base + "[[route]]\npath_prefix = \"/\"\n",
			[]string{`p.toml:9: route[0]: has neither upstream nor redirect`}},
		{"admin without token", base + route + "[admin]\nlisten = \"0.0.0.0:9901\"\n",
			[]string{`p.toml:13: admin.listen: "0.0.0.0:9901" is not a loopback address`}},
		{"tls_cert without tls_key", base + route + "[server]\ntls_cert = \"c.pem\"\n",
			[]string{`p.toml:13: server.tls_cert: tls_cert is set without tls_key`}},
		{"bad balance", base + route + "[[upstream]]\nname = \"b\"\ntargets = [\"http://h:1\"]\nbalance = \"random\"\n",
			[]string{`p.toml:15: upstream[1].balance: unknown balance "random"`}},
		{"bad on_error", base + route + "[[plugin]]\nname = \"b\"\nmodule = \"b.wasm\"\non_error = \"ignore\"\n",
			[]string{`p.toml:15: plugin[1].on_error: unknown on_error "ignore"`}},
		{"bad target", base + route + "[[upstream]]\nname = \"b\"\ntargets = [\"http://h:1\", \"127.0.0.1:9002\"]\n",
			[]string{`p.toml:14: upstream[1].targets[1]: bad target "127.0.0.1:9002"`}},
		{"bad redirect status", base + "[[route]]\nredirect = \"https://x/\"\nstatus = 200\n",
			[]string{`p.toml:11: route[0].status: redirect status must be`}},
		{"bad host", base + "[[route]]\nhost = \"api.example.com:8080\"\nupstream = \"app\"\n",
			[]string{`p.toml:10: route[0].host: bad host`}},
		{"bad path prefix", base + "[[route]]\npath_prefix = \"api\"\nupstream = \"app\"\n",
			[]string{`p.toml:10: route[0].path_prefix: must start with "/"`}},
		{"memory_limit below a page", base + route + "[[plugin]]\nname = \"b\"\nmodule = \"b.wasm\"\nmemory_limit = \"1KiB\"\n",
			[]string{`p.toml:15: plugin[1].memory_limit: must be at least 64KiB (one Wasm page), got 1KiB`}},
		{"memory_limit between pages", base + route + "[[plugin]]\nname = \"b\"\nmodule = \"b.wasm\"\nmemory_limit = \"100KiB\"\n",
			[]string{`p.toml:15: plugin[1].memory_limit: 100KiB is not a whole number of 64KiB Wasm pages: use 64KiB or 128KiB`}},
		{"bad sha256", base + route + "[[plugin]]\nname = \"b\"\nmodule = \"b.wasm\"\nsha256 = \"abc\"\n",
			[]string{`p.toml:15: plugin[1].sha256: want 64 hex digits`}},
		{"several at once", base + "[[route]]\nupstream = \"nope\"\n[[route]]\npath_prefix = \"/b\"\n[server]\nlisten = \"x\"\n",
			[]string{`p.toml:10: route[0].upstream`, `p.toml:11: route[1]: has neither`, `p.toml:14: server.listen`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml), "p.toml")
			if err == nil {
				t.Fatal("no error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not config.Errors: %v", err, err)
			}
			if len(es) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(es), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), "config: "+w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// Parse records where each plugin and each key of its config table is, so
// that a filter's complaint about its config can name the line.
func TestPluginPosition(t *testing.T) {
	doc := base + "\n[[route]]\nupstream = \"app\"\n" + "[[plugin]]\nname = \"b\"\nmodule = \"b.wasm\"\n  [plugin.config]\n  tokens = [\"x\"]\n  limits.burst = 3\n"
	cfg, err := Parse([]byte(doc), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Plugins[1].Pos
	want := Position{File: "p.toml", Line: 12, ConfigLine: 15, ConfigKeys: map[string]int{"tokens": 16, "limits": 17, "limits.burst": 17}}
	if got.File != want.File || got.Line != want.Line || got.ConfigLine != want.ConfigLine || fmt.Sprint(got.ConfigKeys) != fmt.Sprint(want.ConfigKeys) {
		t.Fatalf("Pos = %+v, want %+v", got, want)
	}
	if p := cfg.Plugins[0].Pos; p.ConfigLine != 0 || p.Line == 0 {
		t.Errorf("plugin without config: Pos = %+v", p)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.toml")
	if err := os.WriteFile(path, []byte(base+"[[route]]\nupstream = \"nope\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+":10: route[0].upstream") {
		t.Fatalf("Load error = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("Load of a missing file = %v", err)
	}
}

// The edge keys: defaults, and each bad value named by key and line.
func TestEdgeKeys(t *testing.T) {
	c, err := Parse([]byte("[[upstream]]\nname = \"u\"\ntargets = [\"http://127.0.0.1:1\"]\n[[route]]\nupstream = \"u\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	s, u, r := c.Server, c.Upstreams[0], c.Routes[0]
	if s.ClientBodyTimeout.Duration != 60*time.Second || s.SendTimeout.Duration != 60*time.Second ||
		s.EscapedSlashes != "reject" || !s.MergeSlashes || len(s.TrustedProxies) != 0 {
		t.Errorf("server defaults: %+v", s)
	}
	if u.ReadTimeout.Duration != 60*time.Second || u.SendTimeout.Duration != 60*time.Second {
		t.Errorf("upstream defaults: %+v", u)
	}
	if len(r.Upgrades) != 1 || r.Upgrades[0] != "websocket" || r.ForwardRawPath {
		t.Errorf("route defaults: %+v", r)
	}
	c, err = Parse([]byte("[server]\nclient_body_timeout = \"0s\"\nmerge_slashes = false\n[[upstream]]\nname = \"u\"\ntargets = [\"http://127.0.0.1:1\"]\n[[route]]\nupstream = \"u\"\nupgrades = []\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ClientBodyTimeout.Duration != 0 || c.Server.MergeSlashes || len(c.Routes[0].Upgrades) != 0 {
		t.Errorf("explicit zero values not kept: %+v %+v", c.Server, c.Routes[0])
	}
	for _, tc := range []struct{ conf, want string }{
		{"[server]\nescaped_slashes = \"drop\"\n", "p.toml:2: server.escaped_slashes"},
		{"[server]\ntrusted_proxies = [\"nope\"]\n", "p.toml:2: server.trusted_proxies[0]"},
		{"[server]\nsend_timeout = \"-1s\"\n", "p.toml:2: server.send_timeout"},
		{"[[upstream]]\nname = \"u\"\ntargets = [\"http://127.0.0.1:1\"]\nread_timeout = \"-1s\"\n", "p.toml:4: upstream[0].read_timeout"},
		{"[[upstream]]\nname = \"u\"\ntargets = [\"http://127.0.0.1:1\"]\n[[route]]\nupstream = \"u\"\nupgrades = [\"web socket\"]\n", "p.toml:6: route[0].upgrades[0]"},
	} {
		_, err := Parse([]byte(tc.conf), "p.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.conf, err, tc.want)
		}
	}
}

// TestWebSocketCompressionOff checks that the compression keys turn off
// what is on by default, and that write_timeout and write_buffer parse.
func TestWebSocketCompressionOff(t *testing.T) {
	c, err := Parse([]byte(`[server.websocket]
compression = false
compression_context_takeover = false
write_timeout = "3s"
write_buffer = "1MiB"
`), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Server.WebSocket
	if ws.Compression || ws.CompressionContextTakeover || ws.WriteTimeout.Duration != 3*time.Second || ws.WriteBuffer != 1<<20 {
		t.Errorf("websocket: %+v", ws)
	}
}
