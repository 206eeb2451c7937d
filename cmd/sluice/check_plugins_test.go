package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/plugins"
)

// check loads every filter module, so a broken one fails the check with a
// message naming the plugin and its file (resolved next to the config).
func TestCheckLoadsModules(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "broken.wasm"), []byte("\x00asm\x01\x00\x00\x00garbage"), 0o600)
	cfg := filepath.Join(dir, "proxy.toml")
	os.WriteFile(cfg, []byte(`[[upstream]]
name = "app"
targets = ["http://127.0.0.1:9001"]
[[route]]
upstream = "app"
plugins = ["auth"]
[[plugin]]
name = "auth"
module = "broken.wasm"
`), 0o600)
	var out, errOut bytes.Buffer
	code := run([]string{"check", cfg}, &out, &errOut)
	if code != 1 || out.Len() != 0 {
		t.Fatalf("check: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if want := `plugins: plugin "auth" (broken.wasm): compile: `; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q does not contain %q", errOut.String(), want)
	}
}

// check accepts every quota key of a [[plugin]] and prints each plugin's
// worst-case memory and the total, as plugins.Budgets works them out.
func TestCheckPrintsMemoryBound(t *testing.T) {
	noop, err := filepath.Abs("../../examples/noop/noop.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(noop); err != nil {
		t.Skipf("examples are not built (make filters): %v", err)
	}
	cfg := filepath.Join(t.TempDir(), "proxy.toml")
	os.WriteFile(cfg, []byte(`[[upstream]]
name = "app"
targets = ["http://127.0.0.1:9001"]
[[route]]
upstream = "app"
plugins = ["a", "b"]
[[plugin]]
name = "a"
module = "`+noop+`"
pool_size = 3
memory_limit = "1MiB"
stack_limit = "256KiB"
state_max_bytes = "8KiB"
state_max_keys = 8
shared_max_bytes = "1MiB"
shared_max_keys = 100
log_rate = 10
max_injected_messages = 4
max_injected_bytes = "64KiB"
max_local_response = "64KiB"
max_body_buffer = "1MiB"
[[plugin]]
name = "b"
module = "`+noop+`"
`), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("check: code %d, stderr %s", code, errOut.String())
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, b := range plugins.Budgets(c) {
		total += b.Total()
		if !strings.Contains(out.String(), "memory: "+b.String()+"\n") {
			t.Errorf("stdout does not describe plugin %q as %q:\n%s", b.Plugin, b.String(), out.String())
		}
	}
	if want := fmt.Sprintf("memory: filters hold at most %d bytes in the worst case\n", total); !strings.HasSuffix(out.String(), want) {
		t.Errorf("stdout does not end with %q:\n%s", want, out.String())
	}
	if !strings.Contains(out.String(), `plugin "a": 3 instances x (1MiB memory + `) {
		t.Errorf("plugin a's pool size and memory limit are not in the bound:\n%s", out.String())
	}
}
