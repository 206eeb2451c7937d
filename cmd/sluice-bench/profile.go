package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileResult is the top of one CPU profile of Sluice under load.
type profileResult struct {
	Target, Load string
	Top          string
	Err          string
}

const profileSeconds = 4

// profileUnderLoad fetches a CPU profile from t's admin listener while gen
// drives load, and keeps the top of `go tool pprof -top`. It does nothing
// (and says so) when the admin listener does not serve pprof.
func (b *bench) profileUnderLoad(ctx context.Context, t *target, load string, gen func(context.Context)) {
	if !b.profile || t.Kind != "sluice" || t.AdminAddr == "" {
		return
	}
	pr := profileResult{Target: t.Name, Load: load}
	defer func() { b.profiles = append(b.profiles, pr) }()
	base := "http://" + t.AdminAddr + "/debug/pprof/"
	c := &http.Client{Timeout: (profileSeconds + 15) * time.Second}
	resp, err := c.Get(base)
	if err != nil || resp.StatusCode != 200 {
		if resp != nil {
			resp.Body.Close()
		}
		pr.Err = "Sluice's admin listener serves no /debug/pprof/, so no profile could be taken."
		return
	}
	resp.Body.Close()
	b.logf("  profiling %s under %s", t.Name, load)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); gen(lctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond) // let the load reach steady state
	resp, err = c.Get(fmt.Sprintf("%sprofile?seconds=%d", base, profileSeconds))
	if err != nil {
		pr.Err = fmt.Sprintf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	path := filepath.Join(b.lab.dir, fmt.Sprintf("cpu-%s-%d.pb.gz", strings.ReplaceAll(t.Name, "+", "-"), len(b.profiles)))
	f, err := os.Create(path)
	if err != nil {
		pr.Err = err.Error()
		return
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil || resp.StatusCode != 200 {
		pr.Err = fmt.Sprintf("profile: status %d %v", resp.StatusCode, err)
		return
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=18",
		filepath.Join(b.lab.root, "bin", "sluice"), path).CombinedOutput()
	if err != nil {
		pr.Err = fmt.Sprintf("go tool pprof: %v", err)
		return
	}
	// Keep from the "Showing nodes" line on; the header names temp files.
	s := string(out)
	if i := strings.Index(s, "Showing nodes"); i >= 0 {
		s = s[i:]
	}
	pr.Top = s
}
