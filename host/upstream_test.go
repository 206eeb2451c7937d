package host

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/testkit"
)

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	a, b, c := testkit.NameBackend(t, "a"), testkit.NameBackend(t, "b"), testkit.NameBackend(t, "c")
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "u"
targets = [%q, %q, %q]
[[route]]
upstream = "u"
`, a.URL, b.URL, c.URL), nil)
	cl := testkit.Client()
	counts := map[string]int{}
	for i := 0; i < 30; i++ {
		_, _, h := testkit.Get(t, cl, px.url+"/")
		counts[h.Get("X-Backend")]++
	}
	if counts["a"] != 10 || counts["b"] != 10 || counts["c"] != 10 {
		t.Errorf("round robin spread %v, want 10 each", counts)
	}
}

func TestLeastConnPrefersIdleTarget(t *testing.T) {
	release := make(chan struct{})
	var busy atomic.Value // name of the backend holding the slow request
	entered := make(chan struct{}, 1)
	mk := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				busy.Store(name)
				entered <- struct{}{}
				<-release
			}
			w.Header().Set("X-Backend", name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := mk("a"), mk("b")
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "u"
targets = [%q, %q]
balance = "least_conn"
[[route]]
upstream = "u"
`, a.URL, b.URL), nil)
	cl := testkit.Client()
	done := make(chan struct{})
	go func() {
		defer close(done)
		testkit.Get(t, cl, px.url+"/slow")
	}()
	<-entered
	counts := map[string]int{}
	for i := 0; i < 10; i++ {
		_, _, h := testkit.Get(t, cl, px.url+"/fast")
		counts[h.Get("X-Backend")]++
	}
	close(release)
	<-done
	idle := "a"
	if busy.Load() == "a" {
		idle = "b"
	}
	if counts[idle] != 10 {
		t.Errorf("with %v busy, fast requests went %v; want all 10 on %s", busy.Load(), counts, idle)
	}
}

// flakyBackend answers its health path with 200 or 503 as told.
type flakyBackend struct {
	*httptest.Server
	healthy atomic.Bool
	checks  atomic.Int64
}

func newFlaky(t *testing.T, name string) *flakyBackend {
	f := &flakyBackend{}
	f.healthy.Store(true)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			f.checks.Add(1)
			if !f.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		w.Header().Set("X-Backend", name)
	}))
	t.Cleanup(f.Close)
	return f
}

func TestHealthCheckEjectsAndRestores(t *testing.T) {
	a, b := newFlaky(t, "a"), newFlaky(t, "b")
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "u"
targets = [%q, %q]
  [upstream.health]
  path = "/healthz"
  interval = "30ms"
  timeout = "500ms"
  healthy_threshold = 2
  unhealthy_threshold = 2
[[route]]
upstream = "u"
`, a.URL, b.URL), nil)
	cl := testkit.Client()
	spread := func() map[string]int {
		m := map[string]int{}
		for i := 0; i < 10; i++ {
			status, _, h := testkit.Get(t, cl, px.url+"/")
			m[fmt.Sprint(status, h.Get("X-Backend"))]++
		}
		return m
	}
	if m := spread(); m["200a"] != 5 || m["200b"] != 5 {
		t.Fatalf("both healthy: %v", m)
	}
	a.healthy.Store(false)
	pl := px.gen.Load().pools["u"]
	testkit.Eventually(t, 3*time.Second, "a taken out", func() bool { return !pl.targets[0].healthy.Load() })
	if m := spread(); m["200b"] != 10 {
		t.Fatalf("a unhealthy: %v, want all on b", m)
	}
	a.healthy.Store(true)
	testkit.Eventually(t, 3*time.Second, "a back in", func() bool { return pl.targets[0].healthy.Load() })
	if m := spread(); m["200a"] != 5 || m["200b"] != 5 {
		t.Fatalf("a restored: %v", m)
	}

	// All down: 503 at once, not after a timeout.
	a.healthy.Store(false)
	b.healthy.Store(false)
	testkit.Eventually(t, 3*time.Second, "all out", func() bool { return pl.availableCount() == 0 })
	start := time.Now()
	status, _, _ := testkit.Get(t, cl, px.url+"/")
	if status != http.StatusServiceUnavailable || time.Since(start) > 500*time.Millisecond {
		t.Errorf("all targets down: %d after %v, want 503 at once", status, time.Since(start))
	}

	// Stopping the proxy stops the checkers: no more probes arrive.
	px.stop(t)
	n := a.checks.Load()
	time.Sleep(150 * time.Millisecond)
	if a.checks.Load() != n {
		t.Errorf("health checks continue after shutdown")
	}
}

func TestPassiveEjection(t *testing.T) {
	live := testkit.NameBackend(t, "live")
	dead := testkit.DeadAddr(t)
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "u"
targets = ["http://%s", %q]
passive_failures = 2
passive_eject_for = "400ms"
[[route]]
upstream = "u"
`, dead, live.URL), nil)
	cl := testkit.Client()
	var bad int
	for i := 0; i < 20; i++ {
		status, _, _ := testkit.Get(t, cl, px.url+"/")
		if status == http.StatusBadGateway {
			bad++
		} else if status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if bad != 2 {
		t.Errorf("%d requests failed before the dead target was ejected, want 2", bad)
	}
	pl := px.gen.Load().pools["u"]
	if pl.targets[0].available(nowNano()) {
		t.Fatal("dead target still available")
	}
	// After the ejection period it is tried again.
	testkit.Eventually(t, 2*time.Second, "ejection expires", func() bool { return pl.targets[0].available(nowNano()) })
}

func TestUpstreamErrors(t *testing.T) {
	dead := testkit.DeadAddr(t)
	stall := make(chan struct{})
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { once.Do(func() { close(stall) }) }) // runs before slow.Close
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "dead"
targets = ["http://%s"]
passive_failures = 0
[[upstream]]
name = "slow"
targets = [%q]
response_timeout = "300ms"
[[upstream]]
name = "down"
targets = ["http://%s"]
passive_failures = 1
passive_eject_for = "1m"
[[route]]
path_prefix = "/dead"
upstream = "dead"
[[route]]
path_prefix = "/slow"
upstream = "slow"
[[route]]
path_prefix = "/down"
upstream = "down"
`, dead, slow.URL, dead), nil)
	cl := testkit.Client()
	check := func(path string, want int, within time.Duration) {
		t.Helper()
		start := time.Now()
		status, body, h := testkit.Get(t, cl, px.url+path)
		took := time.Since(start)
		if status != want || took > within {
			t.Errorf("%s: %d %q after %v, want %d within %v", path, status, body, took, want, within)
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: error response without X-Request-Id", path)
		}
	}
	check("/dead", http.StatusBadGateway, time.Second)
	check("/slow", http.StatusGatewayTimeout, 2*time.Second)
	check("/down", http.StatusBadGateway, time.Second) // ejects the only target
	check("/down", http.StatusServiceUnavailable, 500*time.Millisecond)
}
