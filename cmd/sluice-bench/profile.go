package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileResult is the top of one profile of Sluice under load.
type profileResult struct {
	Target, Load string
	Top          string
	Err          string
}

const profileSeconds = 4

// pprofInit is compiled into a profiling build of cmd/sluice through
// `go build -overlay`, so the product needs no pprof endpoint of its own and
// its files stay untouched. The measured runs never use this build.
const pprofInit = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("SLUICE_BENCH_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// buildProfilingSluice builds cmd/sluice plus pprofInit into the temp dir.
func (l *lab) buildProfilingSluice() (string, error) {
	src := filepath.Join(l.dir, "bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofInit), 0o644); err != nil {
		return "", err
	}
	ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(l.root, "cmd", "sluice", "zz_bench_pprof.go"): src,
	}})
	ovPath := filepath.Join(l.dir, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(l.dir, "sluice-pprof")
	cmd := exec.Command("go", "build", "-overlay", ovPath, "-o", bin, "./cmd/sluice")
	cmd.Dir = l.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sluice-bench: profiling build: %v: %s", err, out)
	}
	return bin, nil
}

// startProfiled starts a fresh instance of s from the profiling build.
func (b *bench) startProfiled(ctx context.Context, s spec) (*target, error) {
	if b.lab.pprofBin == "" {
		bin, err := b.lab.buildProfilingSluice()
		if err != nil {
			return nil, err
		}
		b.lab.pprofBin = bin
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b.lab.pprofAddr = fmt.Sprintf("127.0.0.1:%d", port)
	defer func() { b.lab.pprofAddr = "" }()
	return b.lab.start(ctx, s)
}

// fetch GETs a pprof endpoint into a file in the temp dir.
func (b *bench) fetch(url, name string, timeout time.Duration) (string, error) {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	path := filepath.Join(b.lab.dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return path, err
}

// top runs `go tool pprof -top` and keeps the table (its header names temp
// files).
func (b *bench) top(ctx context.Context, profile string, extra ...string) (string, error) {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=18"}, extra...)
	args = append(args, b.lab.pprofBin, profile)
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v: %s", err, out)
	}
	s := string(out)
	if i := strings.Index(s, "Showing nodes"); i >= 0 {
		s = s[i:]
	}
	return s, nil
}

// profileUnderLoad takes a CPU profile of a fresh profiling instance of s
// while gen drives load against it.
func (b *bench) profileUnderLoad(ctx context.Context, s spec, load string, gen func(context.Context, *target)) {
	if !b.profile || s.Kind != "sluice" || ctx.Err() != nil {
		return
	}
	b.profiling(ctx, s, load, func(t *target, pr *profileResult) error {
		b.logf("  profiling %s under %s", s.Name, load)
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); gen(lctx, t) }()
		defer func() { cancel(); <-done }()
		time.Sleep(300 * time.Millisecond) // let the load reach steady state
		path, err := b.fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.PprofAddr, profileSeconds),
			fmt.Sprintf("cpu-%d.pb.gz", len(b.profiles)), (profileSeconds+15)*time.Second)
		if err != nil {
			return err
		}
		pr.Top, err = b.top(ctx, path)
		return err
	})
}

// profileIdle holds n idle WebSockets through a fresh profiling instance of s
// and keeps the top of its in-use heap and its goroutine count.
func (b *bench) profileIdle(ctx context.Context, s spec, n int) {
	if !b.profile || ctx.Err() != nil {
		return
	}
	b.profiling(ctx, s, fmt.Sprintf("%d idle WebSockets, in-use heap", n), func(t *target, pr *profileResult) error {
		b.logf("  profiling %s memory with %d idle WebSockets", s.Name, n)
		closeAll, err := holdIdle(ctx, "ws://"+t.Addr+"/ws", n, 32)
		if err != nil {
			return err
		}
		defer closeAll()
		time.Sleep(b.plan.IdleSettle)
		gr, err := b.fetch("http://"+t.PprofAddr+"/debug/pprof/goroutine?debug=1", fmt.Sprintf("goroutine-%d.txt", len(b.profiles)), 30*time.Second)
		if err == nil {
			if raw, err := os.ReadFile(gr); err == nil {
				first, _, _ := strings.Cut(string(raw), "\n")
				var total int
				fmt.Sscanf(first, "goroutine profile: total %d", &total)
				pr.Load += fmt.Sprintf(" (%d goroutines, %.1f per connection)", total, float64(total)/float64(n))
			}
		}
		path, err := b.fetch("http://"+t.PprofAddr+"/debug/pprof/heap?gc=1", fmt.Sprintf("heap-%d.pb.gz", len(b.profiles)), 30*time.Second)
		if err != nil {
			return err
		}
		pr.Top, err = b.top(ctx, path, "-sample_index=inuse_space")
		return err
	})
}

// profiling adds one profile result for s under load: what measure finds
// against a fresh profiling instance of s, or why it could not.
func (b *bench) profiling(ctx context.Context, s spec, load string, measure func(*target, *profileResult) error) {
	pr := profileResult{Target: s.Name, Load: load}
	t, err := b.startProfiled(ctx, s)
	if err == nil {
		err = measure(t, &pr)
		b.lab.stop(t)
	}
	if err != nil {
		pr.Err = err.Error()
	}
	b.profiles = append(b.profiles, pr)
}
