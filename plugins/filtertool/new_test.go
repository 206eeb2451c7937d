package filtertool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The projects themselves are built, tested and served by
// cmd/sluice's TestFilterNewProjects; these are the refusals.
func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644)
	tests := []struct {
		name string
		o    NewOptions
		want string
	}{
		{"path in the name", NewOptions{Name: "../evil", Lang: "go"}, `name "../evil"`},
		{"upper case", NewOptions{Name: "Hello", Lang: "go"}, `name "Hello"`},
		{"unknown language", NewOptions{Name: "x", Lang: "cobol", Dir: filepath.Join(dir, "x")}, `-lang "cobol"`},
		{"folder not empty", NewOptions{Name: "full", Lang: "go", Dir: full}, "exists and is not empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := New(tt.o, &out, &errOut); code != 1 {
				t.Fatalf("exit %d", code)
			}
			mustContain(t, "stderr", errOut.String(), tt.want)
		})
	}
	if b, _ := os.ReadFile(filepath.Join(full, "keep.txt")); string(b) != "mine" {
		t.Fatal("New touched a folder that was not empty")
	}
}

func TestNewWritesTheSDK(t *testing.T) {
	for _, lang := range []string{"tinygo", "go", "rust"} {
		t.Run(lang, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rate_limit")
			var out, errOut bytes.Buffer
			if code := New(NewOptions{Name: "rate_limit", Lang: lang, Dir: dir, Sluice: "/bin/sluice"}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			mk, _ := os.ReadFile(filepath.Join(dir, "Makefile"))
			mustContain(t, "Makefile", string(mk), "SLUICE ?= /bin/sluice", "filter test rate_limit.cases.toml")
			want := map[string][]string{
				"tinygo": {"go.mod", "main.go", "main_test.go", "sluice-sdk/go/go.mod", "sluice-sdk/go/sluice.go"},
				"go":     {"go.mod", "main.go", "main_test.go", "sluice-sdk/go/internal/wire/wire.go", "sluice-sdk/go/sluicetest/sluicetest.go"},
				"rust":   {"Cargo.toml", "src/lib.rs", "sluice-sdk/rust/Cargo.toml", "sluice-sdk/rust/src/lib.rs"},
			}[lang]
			for _, f := range append(want, "README.md", "rate_limit.cases.toml", ".gitignore") {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			if lang == "rust" {
				src, _ := os.ReadFile(filepath.Join(dir, "src/lib.rs"))
				if !strings.Contains(string(src), "pub struct RateLimit;") {
					t.Errorf("lib.rs:\n%s", src)
				}
			}
		})
	}
}
