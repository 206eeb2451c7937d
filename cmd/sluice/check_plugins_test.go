package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
