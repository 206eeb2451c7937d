package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/host/testkit"
)

// refuseWAT refuses its config after logging why, naming the key, as the
// SDKs do for an unknown key.
const refuseWAT = `(module
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "config: unknown key \22tokenz\22")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (i32.const 0))
  (func (export "sluice_configure") (param i32) (result i32)
    (call $log (i32.const 2) (i32.const 16) (i32.const 28))
    (i32.const 1)))`

// loopWAT never returns from its request hook.
const loopWAT = `(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (loop $l (br $l)) (i32.const 0)))`

func wat(t *testing.T, dir, name, src string) string {
	t.Helper()
	w := testkit.Tool(t, "wat2wasm")
	in, out := filepath.Join(dir, name+".wat"), filepath.Join(dir, name+".wasm")
	os.WriteFile(in, []byte(src), 0o644)
	if b, err := exec.Command(w, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

// The filter subcommands parse their flags (before or after the module)
// and exit 0, 1 (the module failed) or 2 (usage).
func TestFilterCommandLine(t *testing.T) {
	dir := t.TempDir()
	loop := wat(t, dir, "loop", loopWAT)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"filter"}, 2, "usage: sluice filter inspect"},
		{"unknown subcommand", []string{"filter", "frobnicate"}, 2, "usage:"},
		{"run: flags after the module", []string{"filter", "run", loop, "-url", "/x", "-H", "A: b"}, 1, "request_headers failed (timeout): exceeded the hook deadline of 10ms"},
		{"run: two modules", []string{"filter", "run", loop, loop}, 2, "usage:"},
		{"run: bad flag", []string{"filter", "run", "-nope", loop}, 2, "flag provided but not defined: -nope"},
		{"inspect", []string{"filter", "inspect", loop}, 0, "hooks      sluice_on_request_headers"},
		{"test: no cases file", []string{"filter", "test", "-module", loop}, 2, "usage:"},
		{"new: no name", []string{"filter", "new", "-lang", "go"}, 2, "usage:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errOut.String())
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tt.want) {
				t.Fatalf("output does not contain %q:\n%s", tt.want, all)
			}
		})
	}
}

// sluice check reports a config the filter refuses at the line of the key
// the filter names, with the filter's reason.
func TestCheckConfigRefusedAtItsLine(t *testing.T) {
	dir := t.TempDir()
	wat(t, dir, "refuse", refuseWAT)
	conf := filepath.Join(dir, "proxy.toml")
	os.WriteFile(conf, []byte(`[[upstream]]
name = "app"
targets = ["http://127.0.0.1:9001"]

[[route]]
upstream = "app"
plugins = ["auth"]

[[plugin]]
name = "auth"
module = "refuse.wasm"
  [plugin.config]
  tokens = ["a"]
  tokenz = ["b"]
`), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", conf}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	want := conf + `:14: sluice_configure refused its config (returned 1): config: unknown key "tokenz"`
	if !strings.Contains(errOut.String(), want) {
		t.Fatalf("stderr does not contain\n%s\n%s", want, errOut.String())
	}
}
