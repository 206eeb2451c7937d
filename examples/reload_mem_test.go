package examples_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/plugins"
)

// TestReloadsReleaseWhatTheyLoaded reloads 100 distinct module versions,
// real TinyGo and Go builds among them and modules the loader refuses at
// every stage, and checks that the heap and the resident set come back to
// where they were after the first reloads: a retired generation's compiled
// code, runtime and instances are released, and a refused module leaves
// nothing behind.
//
// The distinct versions are real builds that differ by a constant (-ldflags
// -X main.version=N) and, to reach 100 without 100 builds, the same builds
// with a custom section that names the variant: different bytes, so a new
// module that the runtime compiles from scratch, with the same code.
func TestReloadsReleaseWhatTheyLoaded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: building filter modules takes a while")
	}
	dir := t.TempDir()
	builds := buildVersions(t, dir)
	refused := refusedModules(t, dir)

	loader := plugins.NewLoader(plugins.LoaderOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer loader.Close()
	var live *plugins.Set
	defer func() {
		if live != nil {
			live.Close()
		}
	}()

	const reloads, warmup = 100, 10
	var heap0, rss0 uint64
	loaded, failed := 0, 0
	for i := range reloads {
		if i == warmup {
			heap0, rss0 = settledMemory()
		}
		var pc config.Plugin
		want := ""
		if i%9 == 4 {
			pc = refused[i%len(refused)]
		} else {
			// Go builds compile in about a second each: one reload in ten.
			b := builds[i%len(builds)]
			if i%10 == 7 {
				b = builds[len(builds)-1-i/10%2]
			} else if len(builds) > 2 {
				b = builds[i%(len(builds)-2)]
			}
			pc = config.Plugin{Module: variant(t, dir, b.path, i)}
			want = b.version
			if i%3 == 0 {
				// Pin the variant, as an operator would.
				sum := sha256.Sum256(mustRead(t, pc.Module))
				pc.SHA256 = hex.EncodeToString(sum[:])
			}
		}
		pc.Name = "v"
		pc.PoolSize = 2
		pc.Timeout = config.Duration{Duration: time.Second}
		next, err := loader.Load(context.Background(), &config.Config{
			Plugins: []config.Plugin{pc},
			Routes:  []config.Route{{Name: "r", PathPrefix: "/", Plugins: []string{"v"}}},
		})
		if want == "" {
			if err == nil {
				next.Close()
				t.Fatalf("reload %d: %s was loaded, want it refused", i, pc.Module)
			}
			failed++
			continue
		}
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		x := &filter.Exchange{Request: httptest.NewRequest("GET", "/", nil), Route: "r", ClientAddr: "127.0.0.1:1", Scheme: "http"}
		reply := next.Chains()["r"].OnRequestHeaders(x)
		if reply == nil || reply.Header.Get("X-Version") != want {
			t.Fatalf("reload %d: reply %+v, want X-Version %s", i, reply, want)
		}
		if live != nil {
			live.Close()
		}
		live = next
		loaded++
	}
	heap1, rss1 := settledMemory()
	t.Logf("%d reloads (%d loaded, %d refused): heap %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB",
		reloads, loaded, failed, mib(heap0), mib(heap1), mib(rss0), mib(rss1))
	// One Go build's compiled code is ~16 MiB; a TinyGo build's ~0.3 MiB.
	// Keeping even a few retired versions fails these margins.
	if heap1 > heap0+4<<20 {
		t.Errorf("heap grew from %.1f to %.1f MiB over %d reloads", mib(heap0), mib(heap1), reloads-warmup)
	}
	if rss1 > rss0+16<<20 {
		t.Errorf("RSS grew from %.1f to %.1f MiB over %d reloads", mib(rss0), mib(rss1), reloads-warmup)
	}
}

type build struct{ path, version string }

// buildVersions builds the versioned filter three times with TinyGo (when
// installed) and twice with Go, each with its own version constant.
func buildVersions(t *testing.T, dir string) []build {
	var (
		out  []build
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []string
	)
	do := func(tinyGo bool, version string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := buildVersion(dir, tinyGo, version); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		}()
		out = append(out, build{filepath.Join(dir, "versioned-"+version+".wasm"), version})
	}
	if tinygo() != "" {
		for _, v := range []string{"tiny-1", "tiny-2", "tiny-3"} {
			do(true, v)
		}
	}
	for _, v := range []string{"go-1", "go-2"} {
		do(false, v)
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	return out
}

// buildVersion builds the versioned filter with version built in.
func buildVersion(dir string, tinyGo bool, version string) error {
	file := filepath.Join(dir, "versioned-"+version+".wasm")
	ld := "-X main.version=" + version
	var cmd *exec.Cmd
	if tinyGo {
		cmd = exec.Command(tinygo(), "build", "-target=wasip1", "-buildmode=c-shared",
			"-scheduler=none", "-no-debug", "-ldflags", ld, "-o", file, ".")
	} else {
		cmd = exec.Command("go", "build", "-buildmode=c-shared", "-ldflags", ld, "-o", file, ".")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	}
	cmd.Dir = filepath.Join("internal", "versioned")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build version %s: %v\n%s", version, err, b)
	}
	return nil
}

// refusedModules returns plugins whose modules the loader refuses: a
// module that does not compile, one built for another ABI version, one
// whose configure fails, one whose pin does not match.
func refusedModules(t *testing.T, dir string) []config.Plugin {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Fatal("wat2wasm not found: install wabt (scripts/install-tools.sh)")
	}
	wats := map[string]string{
		"abi2": `(module (memory (export "memory") 1)
			(func (export "sluice_abi_version") (result i32) (i32.const 2)))`,
		"configure": `(module (memory (export "memory") 1)
			(func (export "sluice_abi_version") (result i32) (i32.const 1))
			(func (export "sluice_configure") (param i32) (result i32) (i32.const 1)))`,
		"trap-init": `(module (memory (export "memory") 1)
			(func (export "_initialize") unreachable)
			(func (export "sluice_abi_version") (result i32) (i32.const 1)))`,
	}
	var out []config.Plugin
	for name, src := range wats {
		wat := filepath.Join(dir, name+".wat")
		wasm := filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(wat, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("wat2wasm", wat, "-o", wasm).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s: %v\n%s", name, err, b)
		}
		out = append(out, config.Plugin{Module: wasm})
	}
	garbage := filepath.Join(dir, "garbage.wasm")
	if err := os.WriteFile(garbage, append([]byte("\x00asm\x01\x00\x00\x00\x01"), bytes.Repeat([]byte{0xff}, 64)...), 0o644); err != nil {
		t.Fatal(err)
	}
	out = append(out, config.Plugin{Module: garbage})
	return append(out, config.Plugin{Module: out[0].Module, SHA256: strings.Repeat("0", 64)})
}

// variant writes a copy of the module at path with a custom section that
// holds n, so its bytes (and sha256) differ from every other variant's.
func variant(t *testing.T, dir, path string, n int) string {
	bin := mustRead(t, path)
	name, payload := "sluice-test-variant", strconv.Itoa(n)
	body := append(uleb(len(name)), name...)
	body = append(body, payload...)
	bin = append(bin, 0) // a custom section
	bin = append(bin, uleb(len(body))...)
	bin = append(bin, body...)
	out := filepath.Join(dir, fmt.Sprintf("variant-%d.wasm", n))
	if err := os.WriteFile(out, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func uleb(v int) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// settledMemory returns the heap in use and the resident set after the
// collector has run twice (compiled code is unmapped by finalizers, which
// run after the first collection that finds it unreachable).
func settledMemory() (heap, rss uint64) {
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, residentBytes()
}

// residentBytes reads the process's resident set from /proc (0 elsewhere).
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
