package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/reload"
)

// variant writes a copy of the module at path with a custom section
// appended (valid WebAssembly, different bytes and sha256), so a reload
// sees a new module as a redeployed filter would be.
func variant(b testing.TB, path, tag string) string {
	bin, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	name := "sluice-bench"
	body := append([]byte{byte(len(name))}, name...)
	body = append(body, tag...)
	sec := append([]byte{0, byte(len(body))}, body...) // id 0: custom; len < 128
	out := filepath.Join(b.TempDir(), tag+"-"+filepath.Base(path))
	if err := os.WriteFile(out, append(bin, sec...), 0o600); err != nil {
		b.Fatal(err)
	}
	return out
}

// benchConfig routes everything through the headers filter.
func benchConfig(backend, module, stamp string) string {
	return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[[upstream]]
name = "app"
targets = [%q]
[[route]]
name = "api"
upstream = "app"
plugins = ["headers"]
[[plugin]]
name = "headers"
module = %q
timeout = "1s"
  [plugin.config.response]
  set = { "X-Version" = %q }
`, backend, module, stamp)
}

// BenchmarkReload measures a reload from trigger to swap (Reloader.Reload:
// read and fingerprint the files, parse, build and configure the new
// plugin set, swap; retiring the old one happens after, off the clock).
// The watcher adds its debounce (200ms) before this.
//
//   - tinygo, go: each reload deploys a module with new bytes (a rebuilt
//     filter) and a new config. The compilation cache is warm after the
//     first two, as it is for a filter redeployed under the same build.
//   - tinygo-config, go-config: only the config changes; the compiled
//     module is reused by content hash.
func BenchmarkReload(b *testing.B) {
	m := buildModules(b)
	back := e2eBackend(b)
	for _, tc := range []struct {
		name, module string
		newBytes     bool
	}{
		{"tinygo", m["headers.tinygo"], true},
		{"go", m["headers.go"], true},
		{"tinygo-config", m["headers.tinygo"], false},
		{"go-config", m["headers.go"], false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.module == "" {
				b.Skip("tinygo is not installed")
			}
			mods := [2]string{tc.module, tc.module}
			if tc.newBytes {
				mods = [2]string{variant(b, tc.module, "a"), variant(b, tc.module, "b")}
			}
			e := startE2E(b, benchConfig(back.URL, mods[0], "A"))
			// Both versions once, so the compilation cache holds them.
			for i := range 2 {
				e.write(benchConfig(back.URL, mods[1-i], fmt.Sprint("warm", i)))
				if _, err := e.r.Reload("bench", false); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e.write(benchConfig(back.URL, mods[i%2], fmt.Sprint("v", i)))
				b.StartTimer()
				st, err := e.r.Reload("bench", false)
				if err != nil || st.LastResult != reload.Loaded {
					b.Fatalf("reload: %v %+v", err, st)
				}
			}
		})
	}
}

// BenchmarkReloadRequestLatency compares request latency without reloads
// and while reloads run back to back: four keep-alive clients send 2,000
// requests through the headers filter (TinyGo) in each phase; in the
// second a goroutine redeploys the filter (new module bytes and config)
// continuously. It reports both p99s (p99-steady-µs, p99-reloading-µs) and
// the reloads that ran. Run it with -benchtime=1x.
func BenchmarkReloadRequestLatency(b *testing.B) {
	m := buildModules(b)
	module := m["headers.tinygo"]
	if module == "" {
		module = m["headers.go"]
	}
	back := e2eBackend(b)
	mods := [2]string{variant(b, module, "a"), variant(b, module, "b")}
	e := startE2E(b, benchConfig(back.URL, mods[0], "A"))
	const clients, perClient = 4, 500

	phase := func(reloading bool) (p50, p99 time.Duration, reloads int64) {
		var stop atomic.Bool
		var rwg sync.WaitGroup
		if reloading {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				for i := 1; !stop.Load(); i++ {
					e.write(benchConfig(back.URL, mods[i%2], fmt.Sprint("v", i)))
					if _, err := e.r.Reload("bench", false); err != nil {
						b.Error(err)
						return
					}
					reloads++
				}
			}()
			time.Sleep(20 * time.Millisecond)
		}
		lat := make([]time.Duration, 0, clients*perClient)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 10 * time.Second}
				mine := make([]time.Duration, 0, perClient)
				for range perClient {
					t0 := time.Now()
					resp, err := c.Get(e.url + "/x")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || resp.Header.Get("X-Version") == "" {
						b.Errorf("%s X-Version %q", resp.Status, resp.Header.Get("X-Version"))
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		stop.Store(true)
		rwg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat[len(lat)/2], lat[len(lat)*99/100], reloads
	}

	var s50, s99, r50, r99 time.Duration
	var reloads int64
	for i := 0; i < b.N; i++ {
		a50, a99, _ := phase(false)
		c50, c99, n := phase(true)
		s50, s99, r50, r99 = s50+a50, s99+a99, r50+c50, r99+c99
		reloads += n
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(b.N) }
	b.ReportMetric(us(s50), "p50-steady-µs")
	b.ReportMetric(us(s99), "p99-steady-µs")
	b.ReportMetric(us(r50), "p50-reloading-µs")
	b.ReportMetric(us(r99), "p99-reloading-µs")
	b.ReportMetric(float64(reloads)/float64(b.N), "reloads")
}
