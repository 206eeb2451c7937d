package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browserDir holds the npm package that drives Chromium.
const browserDir = "testdata/browser"

// TestStatusPageInBrowser loads the admin listener's status page in
// headless Chromium (Debian's, driven by playwright-core) against a known
// config and traffic: it checks what the page shows, that its counters
// follow new traffic without a reload, that it fetches nothing from
// elsewhere, and saves a screenshot (SLUICE_UPDATE_SCREENSHOT=1 writes it
// to docs/status-page.png, which the README shows).
func TestStatusPageInBrowser(t *testing.T) {
	chromium := "/usr/bin/chromium"
	missing := ""
	if _, err := os.Stat(chromium); err != nil {
		missing = "chromium"
	} else if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core")); err != nil {
		missing = "playwright-core (npm ci in " + browserDir + ")"
	} else if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed: scripts/install-tools.sh installs it", missing)
		}
		t.Skipf("%s not installed: scripts/install-tools.sh installs it", missing)
	}

	dir := t.TempDir()
	gate := buildGate(t, dir)
	back := opsBackend(t)
	dead := deadAddr(t)
	o := startOps(t, dir, opsConfig(back.URL, dead, ""))
	for _, path := range []string{"/plain/a", "/plain/b", "/g/ok", "/g/d", "/g/t", "/dead", "/dead", "/dead"} {
		resp, err := http.Get(o.url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// A reload that changes a route, so the page has one to show.
	if err := os.WriteFile(o.path, []byte(opsConfig(back.URL, dead, "\n[[route]]\nname = \"docs\"\npath_prefix = \"/docs/\"\nredirect = \"https://example.com/\"\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := o.r.Reload("admin", false); err != nil {
		t.Fatal(err)
	}

	shot := filepath.Join(dir, "status-page.png")
	cmd := exec.Command("node", "status.mjs", o.admin, o.url, shot)
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	cmd.Stderr = os.Stderr
	timer := time.AfterFunc(60*time.Second, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node status.mjs: %v\n%s", err, out)
	}
	type view struct {
		Generation, Reload, Title  string
		Routes, Plugins, Upstreams [][]string
	}
	var res struct {
		Before, After    view
		Start, Marker    float64
		External, Errors []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("browser output: %v\n%s", err, out)
	}
	v := res.Before
	if v.Title != "Sluice status" || v.Generation != "2" {
		t.Errorf("title %q, generation %q", v.Title, v.Generation)
	}
	if !strings.Contains(v.Reload, "loaded") || !strings.Contains(v.Reload, "admin") {
		t.Errorf("last reload shows %q", v.Reload)
	}
	row := func(rows [][]string, first string) []string {
		for _, r := range rows {
			if len(r) > 0 && r[0] == first {
				return r
			}
		}
		t.Errorf("no row %q in %v", first, rows)
		return make([]string, 9)
	}
	// Routes: match, destination, chain and counters.
	if r := row(v.Routes, "gated"); r[1] != "*/g/" || r[2] != "app" || r[3] != "gate" || r[4] != "3" || r[5] != "1" {
		t.Errorf("route gated shows %q", r)
	}
	if r := row(v.Routes, "plain"); r[3] != "none" || r[4] != "2" {
		t.Errorf("route plain shows %q", r)
	}
	if r := row(v.Routes, "docs"); r[2] != "redirect https://example.com/" {
		t.Errorf("route docs shows %q", r)
	}
	// The plugin: module, its sha256, hooks, pool and counters.
	sum := moduleSum(t, gate)
	if r := row(v.Plugins, "gate"); r[1] != "gate.wasm" || r[2] != sum || r[3] != "request_headers, message" ||
		!strings.HasSuffix(r[4], "/ 2") || r[5] != "deny" || r[6] != "50ms" || r[7] != "3" || r[8] != "1" {
		t.Errorf("plugin gate shows %q (sha256 %s)", r, sum)
	}
	// Upstream targets with their health: the dead one is ejected.
	if r := row(v.Upstreams, "app (round_robin, checks /healthz)"); r[1] != back.URL || r[2] != "up" {
		t.Errorf("upstream app shows %q", r)
	}
	if r := row(v.Upstreams, "dead (round_robin)"); r[1] != dead || r[2] != "ejected" {
		t.Errorf("upstream dead shows %q", r)
	}
	// Live: the counters followed new traffic and the page did not reload.
	if r := row(res.After.Routes, "plain"); r[4] != "5" || res.Marker != 42 {
		t.Errorf("after 3 more requests: plain shows %q (started at %v), marker %v", r, res.Start, res.Marker)
	}
	if len(res.External) > 0 || len(res.Errors) > 0 {
		t.Errorf("requests elsewhere %q, errors %q", res.External, res.Errors)
	}
	if os.Getenv("SLUICE_UPDATE_SCREENSHOT") != "" {
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "status-page.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// moduleSum is the hex sha256 of the file at path.
func moduleSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
