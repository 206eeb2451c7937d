package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// scenario is one behaviour of one example, checked the same way in every
// language.
type scenario struct {
	name   string // with the language, the route's and plugin's name and the path prefix
	plugin string // extra [[plugin]] keys, such as on_error = "allow"
	config string // TOML from "[plugin.config]" on; empty: no config

	// loadErr, when set, means the module must be refused at load time
	// with an error that contains it (the steps are not run).
	loadErr string
	steps   []step
}

// scenarios returns the table of one example. It is built when the test
// runs, so tokens can carry times relative to now.
func scenarios(example string) []*scenario {
	switch example {
	case "auth":
		return authScenarios()
	case "headers":
		return headersScenarios()
	case "redact":
		return redactScenarios()
	case "guard":
		return guardScenarios()
	case "noop":
		return noopScenarios()
	case "abitest":
		return abitestScenarios()
	case "ratelimit":
		return ratelimitScenarios()
	}
	panic("conformance: no scenarios for " + example)
}

// TestConformance runs every scenario of every example against every
// language the example is built in, each through the real proxy:
// TestConformance/<example>/<scenario>/<language>.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the conformance kit starts a proxy per example and language")
	}
	b := startBackend(t)
	mods := map[string][]module{}
	tables := map[string][]*scenario{}
	live := map[string][]*scenario{}
	for _, ex := range examples {
		mods[ex.name] = modulesOf(ex.name, ex.langs)
		tables[ex.name] = scenarios(ex.name)
		for _, s := range tables[ex.name] {
			if s.loadErr == "" {
				live[ex.name] = append(live[ex.name], s)
			}
		}
	}
	started := startAll(b.addr, mods, live)
	t.Cleanup(func() {
		for _, p := range started {
			p.stop()
		}
	})
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			p := started[ex.name]
			if p == nil { // not selected by -run after all
				return
			}
			p.wait()
			defer p.stop()
			for i, m := range mods[ex.name] {
				if p.errs[i] != nil {
					t.Fatalf("%s [%s]: starting the proxy: %v", ex.name, m.lang, p.errs[i])
				}
			}
			for _, s := range tables[ex.name] {
				t.Run(s.name, func(t *testing.T) {
					for i, m := range mods[ex.name] {
						t.Run(m.lang, func(t *testing.T) {
							if m.path == "" {
								missing(t, ex.name, m)
							}
							runScenario(t, ex.name, m, s, p.bases[i], b)
						})
					}
				})
			}
		})
	}
}

func runScenario(t *testing.T, example string, m module, s *scenario, base string, b *backend) {
	where := fmt.Sprintf("%s/%s [%s]", example, s.name, m.lang)
	if m.stale {
		where += " (module older than its sources: rebuild it)"
	}
	if s.loadErr != "" {
		err := loadError(m, s)
		want := expand(s.loadErr, instanceName(s, m.lang))
		switch {
		case err == nil:
			t.Errorf("%s: load: expected the module to be refused (%q), it loaded", where, want)
		case !strings.Contains(err.Error(), want):
			t.Errorf("%s: load: expected an error containing %q, got %v", where, want, err)
		}
		return
	}
	dials := 0
	e := &env{t: t, base: base, backend: b, name: instanceName(s, m.lang), dials: &dials}
	for i, st := range s.steps {
		d, err := st.run(e)
		if err != nil {
			t.Fatalf("%s: step %d (%s): %v", where, i+1, expand(st.describe(), e.name), err)
		}
		if len(d) > 0 {
			t.Errorf("%s: step %d (%s):\n\t%s", where, i+1, expand(st.describe(), e.name), strings.Join(d, "\n\t"))
		}
	}
}

// ptr returns a pointer to s, for expected bodies.
func ptr(s string) *string { return &s }

// hdr builds an http.Header from name, value pairs (a name may repeat).
func hdr(kv ...string) map[string][]string {
	h := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		k := http.CanonicalHeaderKey(kv[i])
		h[k] = append(h[k], kv[i+1])
	}
	return h
}

// since is a JWT time claim: now plus d, in Unix seconds.
func since(d time.Duration) int64 { return time.Now().Add(d).Unix() }
