package wsconform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
)

// The conformance table runs every row against eight targets: the two echo
// upstreams directly (the reference for raw mode), and through the real
// proxy in raw mode (no message hook on the route), in message mode with a
// Go chain that passes every message, and in message mode with the real
// redact filter. Each row asserts exactly what the client receives.

// passChain is a Go chain with a message hook that passes every message.
type passChain struct{}

func (passChain) Hooks() filter.HookSet                            { return filter.HookMessage }
func (passChain) OnRequestHeaders(*filter.Exchange) *filter.Reply  { return nil }
func (passChain) OnUpgrade(*filter.Exchange) *filter.Reply         { return nil }
func (passChain) OnResponseHeaders(*filter.Exchange) *filter.Reply { return nil }
func (passChain) OnClose(*filter.Session)                          {}
func (passChain) OnMessage(_ *filter.Session, m *filter.Message) filter.MessageVerdict {
	if m.Binary == false && !validUTF8(m.Payload) {
		panic("wsconform: a filter saw invalid UTF-8")
	}
	return filter.MessageVerdict{}
}

// maxMessage is the proxy's max_message_size in these tests.
const maxMessage = 64 << 10

// target is one place a row runs against.
type target struct {
	name string // "direct/strict", "raw/lax", "msg/strict", "redact/lax", ...
	addr string
	path string
	mode string // direct, raw, msg, redact
	up   *Upstream
}

// targets starts the upstreams and the proxy.
func targets(t *testing.T, wsExtra string) []target {
	t.Helper()
	ups := map[string]*Upstream{"strict": NewUpstream(true, true), "lax": NewUpstream(false, true)}
	for _, u := range ups {
		t.Cleanup(u.Close)
	}
	redact := filepath.Join("..", "..", "..", "examples", "redact", "redact.wasm")
	haveRedact := true
	if _, err := os.Stat(redact); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redact.wasm is missing: make filters builds it")
		}
		haveRedact = false
	}
	var conf strings.Builder
	conf.WriteString("[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n")
	fmt.Fprintf(&conf, "[server.websocket]\nmax_message_size = %d\n%s", maxMessage, wsExtra)
	for name, u := range ups {
		fmt.Fprintf(&conf, "[[upstream]]\nname = %q\ntargets = [%q]\n", name, u.URL)
	}
	modes := []string{"raw", "msg"}
	if haveRedact {
		// The deadline is generous: these tests run under -race on shared
		// machines, and deadlines are not what they test.
		modes = append(modes, "redact")
		fmt.Fprintf(&conf, "[[plugin]]\nname = \"redact\"\nmodule = %q\ntimeout = \"2s\"\n  [plugin.config]\n  words = [\"secret\"]\n", redact)
	}
	for _, m := range modes {
		for name := range ups {
			fmt.Fprintf(&conf, "[[route]]\nname = \"%s-%s\"\npath_prefix = \"/%s/%s/\"\nupstream = %q\n", m, name, m, name, name)
			if m == "redact" {
				conf.WriteString("plugins = [\"redact\"]\n")
			}
		}
	}
	cfg, err := config.Parse([]byte(conf.String()), "conform.toml")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	chains := map[string]filter.Chain{}
	if haveRedact {
		loader := plugins.NewLoader(plugins.LoaderOptions{Logger: log})
		t.Cleanup(func() {
			if err := loader.Close(); err != nil {
				t.Error(err)
			}
		})
		set, err := loader.Load(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Cleanups run last first: the proxy stops, then the Set closes
		// (waiting for its calls and its pools' fillers), then the Loader.
		// Closing the Loader under a live Set unmaps the memory of
		// instances that may still run guest code.
		t.Cleanup(func() { set.Close() })
		chains = set.Chains()
	}
	for name := range ups {
		chains["msg-"+name] = passChain{}
	}
	p, err := host.New(cfg, host.Chains{Routes: chains}, host.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	var out []target
	for _, name := range []string{"strict", "lax"} {
		u, _ := url.Parse(ups[name].URL)
		out = append(out, target{name: "direct/" + name, addr: u.Host, path: "/", mode: "direct", up: ups[name]})
		for _, m := range modes {
			out = append(out, target{name: m + "/" + name, addr: p.Addr().String(), path: "/" + m + "/" + name + "/", mode: m, up: ups[name]})
		}
	}
	if !haveRedact {
		t.Log("redact.wasm not built (make filters): the redact targets are skipped")
	}
	return out
}

// run sends a row's frames to a target and returns what came back.
func run(t *testing.T, tg target, r row) []Event {
	c, err := Dial(tg.addr, tg.path, r.ext)
	if err != nil {
		t.Fatalf("%s: dial: %v", tg.name, err)
	}
	defer c.Close()
	if r.dynamic != nil {
		r.send = r.dynamic(c)
	}
	for i, batch := range r.batches() {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		if err := c.Send(batch...); err != nil {
			break // the peer may have closed already; Read says what it sent
		}
	}
	return c.Read(readWait)
}

const readWait = 5 * time.Second

// expect looks up a row's expectation for a target: the most specific key
// first ("redact/lax", "redact", "msg/lax", "msg"). ok is false when the row
// has none: raw mode then expects what the upstream sends directly.
func (r row) expect(tg target) ([]Event, bool) {
	up := strings.TrimPrefix(tg.name, tg.mode+"/")
	keys := []string{tg.name, tg.mode}
	if tg.mode == "redact" {
		keys = append(keys, "msg/"+up, "msg")
	}
	for _, k := range keys {
		if w, ok := r.want[k]; ok {
			return w, true
		}
	}
	return nil, false
}

// same reports whether got matches want: kinds, payloads and close codes; a
// close reason only when want names one (exact says reasons always count).
func same(got, want []Event, exact bool) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || string(g.Data) != string(w.Data) || g.Code != w.Code {
			return false
		}
		if (exact || w.Reason != "") && g.Reason != w.Reason {
			return false
		}
		if exact && g.Compressed != w.Compressed || w.Compressed && !g.Compressed {
			return false
		}
	}
	return true
}

func TestConformance(t *testing.T) {
	tgs := targets(t, "")
	for _, r := range rows() {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			direct := map[string][]Event{}
			for _, tg := range tgs {
				if tg.mode == "direct" {
					direct[tg.up.URL] = run(t, tg, r)
				}
			}
			for _, tg := range tgs {
				if tg.mode == "direct" {
					continue
				}
				got := run(t, tg, r)
				want, ok := r.expect(tg)
				exact := false
				if !ok {
					if tg.mode != "raw" {
						t.Errorf("%s: row has no expectation", tg.name)
						continue
					}
					want, exact = direct[tg.up.URL], true
				}
				if !same(got, want, exact) {
					t.Errorf("%s:\n got %s\nwant %s", tg.name, Events(got), Events(want))
				}
			}
		})
	}
}

// TestStalledClient checks the bound on what a client that stops reading
// costs: the upstream floods it, the relay's writes stop within
// write_timeout, the client's connection is closed, and the upstream is
// told why with 1001.
func TestStalledClient(t *testing.T) {
	tgs := targets(t, "write_timeout = \"500ms\"\nwrite_buffer = \"64KiB\"\n")
	for _, tg := range tgs {
		if tg.mode == "direct" || tg.name != tg.mode+"/lax" {
			continue
		}
		// One at a time: they share the upstream, whose closes tell when
		// the relay gave up.
		t.Run(tg.mode, func(t *testing.T) {
			before := len(tg.up.Closes())
			c, err := Dial(tg.addr, tg.path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Send(Text("cmd:flood 16384"))
			// Never read. The relay gives up within write_timeout plus the
			// close grace period.
			deadline := time.Now().Add(10 * time.Second)
			for len(tg.up.Closes()) == before {
				if time.Now().After(deadline) {
					t.Fatal("the upstream was not closed")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !slices.Contains(tg.up.Closes()[before:], 1001) {
				t.Fatalf("upstream closes %v, want 1001", tg.up.Closes()[before:])
			}
			// What reached the client is bounded by the socket buffers:
			// read it all and see the connection end.
			n := 0
			buf := make([]byte, 64<<10)
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				k, err := c.br.Read(buf)
				n += k
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("the client's connection is still open after %d bytes", n)
					}
					break
				}
			}
			t.Logf("%s: the stalled client had %d KiB waiting", tg.mode, n>>10)
			// write_buffer caps the proxy's send buffer towards the client
			// (64 KiB, which Linux doubles); the client's receive buffer,
			// never read, is not grown by autotuning. Together a few hundred
			// KiB: megabytes mean the cap was not applied.
			if n > 1<<20 {
				t.Errorf("%s: %d KiB waited for the stalled client; write_buffer = 64KiB should keep it well under 1 MiB", tg.mode, n>>10)
			}
		})
	}
}
