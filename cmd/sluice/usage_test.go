package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestHelpAndVersion(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // each must appear
		stderr []string
	}{
		{"-h", []string{"-h"}, 0, []string{"sluice check proxy.toml", "sluice filter inspect|run|test|new", "sluice version", "-config", "-log-level", "-watch", "-version"}, nil},
		{"-help", []string{"-help"}, 0, []string{"sluice help", "-log-format"}, nil},
		{"help", []string{"help"}, 0, []string{"sluice check proxy.toml", "-config"}, nil},
		{"version", []string{"version"}, 0, []string{"sluice ", runtime.Version(), "wazero v"}, nil},
		{"-version", []string{"-version"}, 0, []string{"sluice ", runtime.Version(), "wazero v"}, nil},
		{"unknown command", []string{"serve-please"}, 2, nil, []string{`unknown command "serve-please"`, "sluice check proxy.toml"}},
		{"unknown flag", []string{"-nope"}, 2, nil, []string{"-nope", "-config"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(c.args, &out, &errOut); code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, c.code, errOut.String())
			}
			for _, w := range c.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}

// A built binary reports the commit and wazero version its build
// information records (what go version -m shows).
func TestVersionOfBuiltBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	wantWazero := ""
	for _, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "dep" && f[1] == "github.com/tetratelabs/wazero":
			wantWazero = f[2]
		case len(f) >= 2 && strings.HasPrefix(f[1], "vcs.revision="):
			if rev := strings.TrimPrefix(f[1], "vcs.revision="); !strings.Contains(string(out), rev) {
				t.Errorf("version %q does not name commit %s", out, rev)
			}
		}
	}
	if wantWazero == "" || !strings.Contains(string(out), "wazero "+wantWazero) {
		t.Errorf("version %q, want wazero %q", out, wantWazero)
	}
}

// JSON logs write durations as float milliseconds under a _ms key.
func TestJSONDurations(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("x", "took", 1500*time.Microsecond, "grace_ms", 2*time.Second, slog.Group("g", "d", time.Millisecond))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["took_ms"] != 1.5 || m["grace_ms"] != 2000.0 || m["took"] != nil {
		t.Errorf("record %v", m)
	}
	if g, _ := m["g"].(map[string]any); g["d_ms"] != 1.0 {
		t.Errorf("grouped duration: %v", m["g"])
	}
}
