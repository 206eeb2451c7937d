package filtertool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureDir holds the .wasm files built from testdata/*.wat with wabt's
// wat2wasm (scripts/install-tools.sh installs it).
var fixtureDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-filtertool-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := buildFixtures(dir); err != nil {
		fmt.Fprintln(os.Stderr, "filtertool tests:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildFixtures(dir string) error {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		return fmt.Errorf("wat2wasm not found: install wabt (scripts/install-tools.sh or apt-get install wabt)")
	}
	wats, _ := filepath.Glob("testdata/*.wat")
	wats = append(wats, "../testdata/command.wat", "../testdata/version2.wat")
	for _, wat := range wats {
		out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(wat), ".wat")+".wasm")
		if b, err := exec.Command("wat2wasm", wat, "-o", out).CombinedOutput(); err != nil {
			return fmt.Errorf("wat2wasm %s: %v\n%s", wat, err, b)
		}
	}
	// The cases file names its module beside it.
	cases, err := os.ReadFile("testdata/tour.cases.toml")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tour.cases.toml"), cases, 0o644)
}

func fixture(name string) string { return filepath.Join(fixtureDir, name+".wasm") }

// run calls one of the commands and returns its exit status and outputs.
func run(t *testing.T, f func(stdout, stderr *bytes.Buffer) int) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := f(&stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func runModule(t *testing.T, o RunOptions) (int, string, string) {
	return run(t, func(stdout, stderr *bytes.Buffer) int { return Run(context.Background(), o, stdout, stderr) })
}

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}
