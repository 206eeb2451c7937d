package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/testkit"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(good, []byte("[[upstream]]\nname = \"app\"\ntargets = [\"http://127.0.0.1:9001\"]\n[[route]]\nupstream = \"app\"\n"), 0o600)
	os.WriteFile(bad, []byte("[[route]]\nupstream = \"app\"\n[server]\nlisten = \"nowhere\"\nlisen = 1\n"), 0o600)

	var out, errOut bytes.Buffer
	if code := run([]string{"check", good}, &out, &errOut); code != 0 || out.String() != "OK\n" {
		t.Errorf("check good: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code := run([]string{"check", bad}, &out, &errOut)
	if code != 1 || out.Len() != 0 {
		t.Errorf("check bad: code %d, stdout %q", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	want := []string{
		bad + `:2: route[0].upstream: no [[upstream]] is named "app"`,
		bad + `:4: server.listen: bad address "nowhere"`,
		bad + `:5: server.lisen: unknown key "lisen"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("check bad printed %d lines, want %d:\n%s", len(lines), len(want), errOut.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
	if code := run([]string{"check"}, &out, &errOut); code != 2 {
		t.Errorf("check without a file: code %d, want 2", code)
	}
}

// The demo config that ships with the repository must stay valid. It names
// the example filters, which `make filters` builds: without them the test
// skips (fails when CI is set), as for a missing tool.
func TestCheckDemoConfig(t *testing.T) {
	const demo = "../../proxy.toml"
	b, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, demo)
	if err != nil {
		t.Fatalf("proxy.toml: %v", err)
	}
	for _, pc := range cfg.Plugins {
		if _, err := os.Stat(filepath.Join(filepath.Dir(demo), pc.Module)); err != nil {
			testkit.Missing(t, fmt.Errorf("the example filter %s is not built (make filters builds it)", pc.Module))
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", demo}, &out, &errOut); code != 0 {
		t.Fatalf("proxy.toml: %s", errOut.String())
	}
}

func TestBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-log-format", "xml"}, &out, &errOut); code != 2 {
		t.Errorf("-log-format xml: code %d, want 2", code)
	}
	if code := run([]string{"-config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errOut); code != 1 {
		t.Errorf("missing config: code %d, want 1", code)
	}
}
