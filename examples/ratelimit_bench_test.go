package examples_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
	"github.com/sluiceproxy/sluice/plugins/redisstore"
	"github.com/sluiceproxy/sluice/plugins/redisstore/redistest"
)

// BenchmarkRateLimit measures what the ratelimit filter costs per request
// through the real proxy over loopback HTTP, with its counters in memory and
// in Redis, against the same route without the filter, at 32 and 256
// concurrent keep-alive connections. Every request is allowed (the limit is
// far away); each connection counts under its own API key.
//
//	go test -run '^$' -bench RateLimit -benchtime 3s .
func BenchmarkRateLimit(b *testing.B) {
	mods := buildFilters(b)
	backend := benchBackend(b)
	redisAddr := redistest.Start(b).Addr()
	for _, store := range []string{"none", "memory", "redis"} {
		base := benchProxy(b, mods["ratelimit.wasm"], backend, store, redisAddr)
		path := "/rl/x"
		if store == "none" {
			path = "/plain/x"
		}
		for _, conns := range []int{32, 256} {
			b.Run(fmt.Sprintf("%s/conns=%d", store, conns), func(b *testing.B) {
				var next atomic.Int64
				b.SetParallelism((conns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
					defer c.CloseIdleConnections()
					key := "k" + strconv.FormatInt(next.Add(1), 10)
					for pb.Next() {
						req, _ := http.NewRequest("GET", base+path, nil)
						req.Header.Set("X-API-Key", key)
						resp, err := c.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
			})
		}
	}
}

func benchBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// benchProxy runs the proxy with route /rl/ (ratelimit) and /plain/ (no
// filter), its shared store in memory or in the Redis at redisAddr.
func benchProxy(b *testing.B, module, backend, store, redisAddr string) string {
	toml := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
[[upstream]]
name = "app"
targets = ["http://%s"]
max_idle_conns = 512
[[route]]
name = "rl"
path_prefix = "/rl/"
upstream = "app"
plugins = ["rl"]
[[route]]
name = "plain"
path_prefix = "/plain/"
upstream = "app"
[[plugin]]
name = "rl"
module = %q
timeout = "1s"
  [plugin.config]
  key = "header:X-API-Key"
  limit = 1000000000
  window = "1h"
`, backend, module)
	if store == "redis" {
		toml += fmt.Sprintf("[shared]\nbackend = \"redis\"\naddress = %q\ncall_timeout = \"1s\"\nhook_budget = \"2s\"\n", redisAddr)
	}
	cfg, err := config.Parse([]byte(toml), "bench.toml")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var shared plugins.SharedStore
	if store == "redis" {
		s, err := redisstore.New(cfg.Shared, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		shared = s
	}
	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: log, Shared: shared})
	b.Cleanup(func() { loader.Close() })
	set, err := loader.Load(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { set.Close() })
	p, err := host.New(cfg, host.Chains{Routes: set.Chains()}, host.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
	})
	return "http://" + p.Addr().String()
}

// BenchmarkRateLimitHook measures the ratelimit filter's request hook alone
// through the real plugin chain (pool, deadline, host functions, guest, the
// store), without the proxy's HTTP work: with the counters in memory and in
// a Redis on loopback, from 32 and 256 concurrent callers.
//
//	go test -run '^$' -bench RateLimitHook -benchtime 2s .
func BenchmarkRateLimitHook(b *testing.B) {
	mods := buildFilters(b)
	redisAddr := redistest.Start(b).Addr()
	for _, store := range []string{"memory", "redis"} {
		toml := fmt.Sprintf(`
[[upstream]]
name = "app"
targets = ["http://127.0.0.1:9"]
[[route]]
name = "rl"
upstream = "app"
plugins = ["rl"]
[[plugin]]
name = "rl"
module = %q
timeout = "1s"
pool_size = 64
  [plugin.config]
  key = "header:X-API-Key"
  limit = 1000000000
  window = "1h"
`, benchModule(mods))
		if store == "redis" {
			toml += fmt.Sprintf("[shared]\nbackend = \"redis\"\naddress = %q\ncall_timeout = \"1s\"\nhook_budget = \"2s\"\npool_size = 256\n", redisAddr)
		}
		cfg, err := config.Parse([]byte(toml), "bench.toml")
		if err != nil {
			b.Fatal(err)
		}
		var shared plugins.SharedStore
		if store == "redis" {
			s, err := redisstore.New(cfg.Shared, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			shared = s
		}
		loader := plugins.NewLoader(plugins.LoaderOptions{Logger: benchLog(), Shared: shared})
		b.Cleanup(func() { loader.Close() })
		set, err := loader.Load(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { set.Close() })
		chain := set.Chains()["rl"]
		warmPool(b, chain, 64)
		for _, callers := range benchCallers {
			b.Run(fmt.Sprintf("%s/callers=%d", store, callers), func(b *testing.B) {
				var next atomic.Int64
				b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r, _ := http.NewRequest("GET", "http://example.com/x", nil)
					r.Header.Set("X-API-Key", "k"+strconv.FormatInt(next.Add(1), 10))
					x := &filter.Exchange{Request: r, Route: "rl", ClientAddr: "127.0.0.1:5000", Scheme: "http"}
					for pb.Next() {
						x.State = filter.State{}
						if reply := chain.OnRequestHeaders(x); reply != nil {
							b.Errorf("status %d", reply.Status)
							return
						}
					}
				})
			})
		}
	}
}

// benchLog shows the proxy's warnings when the benchmark runs with -v.
func benchLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// benchCallers are the concurrency levels of BenchmarkRateLimitHook.
var benchCallers = []int{2, 32, 256}

// benchModule is the ratelimit build the hook benchmark loads:
// SLUICE_BENCH_RATELIMIT names another (ratelimit.go.wasm, ratelimit.rust.wasm).
func benchModule(mods map[string]string) string {
	if m := os.Getenv("SLUICE_BENCH_RATELIMIT"); m != "" {
		abs, _ := filepath.Abs(m)
		return abs
	}
	return mods["ratelimit.wasm"]
}

// warmPool fills the plugin's pool (it grows on demand, one instance at a
// time) before the clock starts: n concurrent calls, again until a round
// has no failure, so the figures are the steady state and not how fast a
// loaded machine instantiates guests.
func warmPool(b *testing.B, chain filter.Chain, n int) {
	for round := 0; round < 50; round++ {
		var failed atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _ := http.NewRequest("GET", "http://example.com/x", nil)
				r.Header.Set("X-API-Key", "warm"+strconv.Itoa(i))
				if chain.OnRequestHeaders(&filter.Exchange{Request: r, Route: "rl", ClientAddr: "127.0.0.1:5000"}) != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if failed.Load() == 0 {
			return
		}
	}
	b.Fatal("the pool did not warm up in 50 rounds")
}
