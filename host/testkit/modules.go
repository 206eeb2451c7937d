package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The rule for a tool the tests need (wat2wasm, tinygo, node): a plain
// `go test ./...` on a machine without it skips the tests that need it and
// says why; with the environment variable CI set, it fails them, so that a
// CI run cannot pass by skipping. scripts/install-tools.sh installs them.

// ErrMissingTool is wrapped by LookTool's error when a tool is not installed.
var ErrMissingTool = errors.New("not installed (scripts/install-tools.sh installs it)")

// LookTool returns the path of the tool name, from PATH or else from one of
// the places given (where installers put it outside PATH), or an error
// wrapping ErrMissingTool.
func LookTool(name string, places ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range places {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s %w", name, ErrMissingTool)
}

// Tool returns the path of the tool name (see LookTool), or skips the test
// (fails it when CI is set) when it is missing.
func Tool(t testing.TB, name string, places ...string) string {
	t.Helper()
	p, err := LookTool(name, places...)
	if err != nil {
		Missing(t, err)
	}
	return p
}

// Missing applies the rule for a missing tool to t: a skip with err as the
// reason, or a failure when CI is set.
func Missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("testkit: %v (CI is set: a missing tool fails the test)", err)
	}
	t.Skipf("testkit: skipped: %v", err)
}

// TinyGoPlaces are where TinyGo is found outside PATH.
var TinyGoPlaces = []string{"/usr/local/tinygo/bin/tinygo", "/opt/tinygo/bin/tinygo"}

// Modules builds filter modules for the tests of one binary, each at most
// once, into a temporary directory that Close removes (call it from
// TestMain after m.Run). It is safe for concurrent use; builds of different
// modules run side by side.
type Modules struct {
	once sync.Once
	dir  string
	err  error

	mu     sync.Mutex
	builds map[string]*moduleBuild
}

type moduleBuild struct {
	n    int // numbers the build, so same-named modules do not collide
	once sync.Once
	path string
	err  error
}

// WAT builds a WebAssembly text file with wat2wasm and returns the .wasm
// path.
func (m *Modules) WAT(t testing.TB, wat string) string {
	t.Helper()
	tool := Tool(t, "wat2wasm")
	name := strings.TrimSuffix(filepath.Base(wat), ".wat") + ".wasm"
	return m.build(t, "wat:"+wat, name, func(out string) *exec.Cmd {
		return exec.Command(tool, wat, "-o", out)
	})
}

// Go builds the filter in the Go package at dir with the standard Go
// toolchain (GOOS=wasip1, a reactor module) and returns the .wasm path.
func (m *Modules) Go(t testing.TB, dir string) string {
	t.Helper()
	return m.build(t, "go:"+dir, filepath.Base(dir)+".go.wasm", func(out string) *exec.Cmd {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
		cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		return cmd
	})
}

// TinyGo builds the filter in the Go package at dir with TinyGo and returns
// the .wasm path; without TinyGo the test skips (fails when CI is set).
func (m *Modules) TinyGo(t testing.TB, dir string) string {
	t.Helper()
	tool := Tool(t, "tinygo", TinyGoPlaces...)
	return m.build(t, "tinygo:"+dir, filepath.Base(dir)+".tinygo.wasm", func(out string) *exec.Cmd {
		cmd := exec.Command(tool, "build", "-target=wasip1", "-buildmode=c-shared", "-scheduler=none", "-no-debug", "-o", out, ".")
		cmd.Dir = dir
		return cmd
	})
}

// build runs the command that cmd makes for key once, and fails t when it
// failed (now or in an earlier test).
func (m *Modules) build(t testing.TB, key, name string, cmd func(out string) *exec.Cmd) string {
	t.Helper()
	m.once.Do(func() { m.dir, m.err = os.MkdirTemp("", "sluice-modules-") })
	if m.err != nil {
		t.Fatalf("testkit: %v", m.err)
	}
	m.mu.Lock()
	if m.builds == nil {
		m.builds = make(map[string]*moduleBuild)
	}
	b := m.builds[key]
	if b == nil {
		b = &moduleBuild{n: len(m.builds)}
		m.builds[key] = b
	}
	m.mu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(m.dir, fmt.Sprintf("%d-%s", b.n, name))
		c := cmd(out)
		if msg, err := c.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("testkit: %s: %v\n%s", strings.Join(c.Args, " "), err, msg)
			return
		}
		b.path = out
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Close removes the built modules.
func (m *Modules) Close() error {
	if m.dir == "" {
		return nil
	}
	return os.RemoveAll(m.dir)
}
