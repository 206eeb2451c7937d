package examples_test

// The ratelimit filter on the Redis backend, with real sluice processes:
// several proxies on one Redis (single node and Cluster) enforce one limit,
// and a Redis that dies or stalls gets each plugin its on_error policy
// without holding up any request.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/plugins/redisstore/redistest"
)

var sluiceBin struct {
	once sync.Once
	path string
	err  error
}

// sluiceBinary builds cmd/sluice once per test binary.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	sluiceBin.once.Do(func() {
		if built.dir == "" {
			if built.dir, sluiceBin.err = os.MkdirTemp("", "sluice-e2e-"); sluiceBin.err != nil {
				return
			}
		}
		out := filepath.Join(built.dir, "sluice")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/sluice")
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			sluiceBin.err = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, b)
		}
		sluiceBin.path = out
	})
	if sluiceBin.err != nil {
		t.Fatal(sluiceBin.err)
	}
	return sluiceBin.path
}

// syncBuffer is a log a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startSluice runs a sluice process on config (its [server] listen
// filled in) and returns its base URL and log.
func startSluice(t *testing.T, config string) (string, *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "proxy.toml")
	config = fmt.Sprintf("[server]\nlisten = %q\n\n%s", addr, config)
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(sluiceBinary(t), "-config", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sluice on %s logged:\n%s", addr, logs)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr, logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not listen on %s:\n%s", addr, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rateLimitConfig is a proxy.toml body for the ratelimit module on
// Redis: route /open/ (on_error allow), /closed/ (deny), both limit
// requests per X-API-Key per hour, and /free/ without filters.
func rateLimitConfig(module, backend, shared string, limit int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[upstream]]\nname = \"app\"\ntargets = [\"http://%s\"]\n", backend)
	for _, r := range []struct{ name, plugins string }{{"open", `["rl_open"]`}, {"closed", `["rl_closed"]`}, {"free", `[]`}} {
		fmt.Fprintf(&b, "\n[[route]]\nname = %q\npath_prefix = \"/%s/\"\nupstream = \"app\"\nplugins = %s\n", r.name, r.name, r.plugins)
	}
	for _, p := range []struct{ name, onError string }{{"rl_open", "allow"}, {"rl_closed", "deny"}} {
		// timeout: the guest's own time, generous for a loaded test machine
		// (Redis waits do not count against it).
		fmt.Fprintf(&b, "\n[[plugin]]\nname = %q\nmodule = %q\non_error = %q\ntimeout = \"250ms\"\n  [plugin.config]\n  key = \"header:X-API-Key\"\n  limit = %d\n  window = \"1h\"\n",
			p.name, module, p.onError, limit)
	}
	return b.String() + "\n" + shared
}

func redisShared(addrs ...string) string {
	if len(addrs) == 1 {
		return fmt.Sprintf("[shared]\nbackend = \"redis\"\naddress = %q\ncall_timeout = \"50ms\"\n", addrs[0])
	}
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf("[shared]\nbackend = \"redis\"\naddresses = [%s]\ncall_timeout = \"50ms\"\n", strings.Join(q, ", "))
}

// awayFromHourBoundary waits when an hour boundary (the window's edge in
// these tests) is less than 10s away.
func awayFromHourBoundary() {
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 10*time.Second {
		time.Sleep(left + time.Second)
	}
}

// getKey sends one request with X-API-Key and returns its status and how long it took.
func getKey(t *testing.T, url, key string) (int, http.Header, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header, time.Since(start)
}

// TestRateLimitAcrossProxies: two sluice processes on one Redis let
// exactly the limit through, however the requests are spread over them.
func TestRateLimitAcrossProxies(t *testing.T) {
	mods := buildFilters(t)
	b := startBackend(t)
	for _, tc := range []struct {
		name  string
		addrs func(t *testing.T) []string
	}{
		{"single", func(t *testing.T) []string { return []string{redistest.Start(t).Addr()} }},
		{"cluster", func(t *testing.T) []string { return redistest.StartCluster(t, 3).Addrs() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const limit, requests = 25, 80
			cfg := rateLimitConfig(mods["ratelimit.wasm"], b.addr, redisShared(tc.addrs(t)...), limit)
			bases := make([]string, 2)
			for i := range bases {
				bases[i], _ = startSluice(t, cfg)
			}
			awayFromHourBoundary()
			var mu sync.Mutex
			counts := map[int]int{}
			var wg sync.WaitGroup
			inFlight := make(chan struct{}, 16) // clients at once, over both proxies
			for i := range requests {
				wg.Add(1)
				inFlight <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-inFlight }()
					status, h, _ := getKey(t, bases[i%2]+"/closed/x", "team-a")
					if status == 429 && h.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
					mu.Lock()
					counts[status]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if counts[200] != limit || counts[429] != requests-limit {
				t.Fatalf("statuses %v: want %d × 200 and %d × 429", counts, limit, requests-limit)
			}
			// Another key has its own budget, on either proxy.
			if status, h, _ := getKey(t, bases[1]+"/closed/x", "team-b"); status != 200 ||
				!strings.HasPrefix(h.Get("RateLimit"), fmt.Sprintf(`"default";r=%d;t=`, limit-1)) {
				t.Fatalf("team-b: %d, RateLimit %q", status, h.Get("RateLimit"))
			}
		})
	}
}

// TestRateLimitRedisFailure: with Redis killed, then asleep, each plugin
// gets its on_error within the call deadline (allow: the request passes;
// deny: 503), routes without shared state do not notice, and everything
// recovers when Redis is back.
func TestRateLimitRedisFailure(t *testing.T) {
	mods := buildFilters(t)
	b := startBackend(t)
	srv := redistest.Start(t)
	base, logs := startSluice(t, rateLimitConfig(mods["ratelimit.wasm"], b.addr, redisShared(srv.Addr()), 1000))
	expect := func(what string, want map[string]int) {
		t.Helper()
		for route, status := range want {
			got, _, took := getKey(t, base+"/"+route+"/x", "k")
			if got != status {
				t.Errorf("%s: /%s/ got %d, want %d", what, route, got, status)
			}
			// The call deadline is 50ms; the rest is the machine.
			if took > time.Second {
				t.Errorf("%s: /%s/ took %s", what, route, took)
			}
		}
	}
	up := map[string]int{"open": 200, "closed": 200, "free": 200}
	down := map[string]int{"open": 200, "closed": 503, "free": 200}
	expect("up", up)

	srv.Kill()
	expect("killed", down)
	if !strings.Contains(logs.String(), "shared store") {
		t.Errorf("the outage is not logged as the shared store's:\n%s", logs)
	}

	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _, _ := getKey(t, base+"/closed/x", "k")
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Redis restarted: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect("restarted", up)

	srv.Sleep(3 * time.Second)
	expect("asleep", down)
}
