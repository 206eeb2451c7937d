package filtertool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// examplesDir holds the example filters, each with a cases file and its
// builds (made by `make filters`).
const examplesDir = "../../examples"

// builds are the files each language's build of example NAME is written to.
var builds = []struct{ lang, suffix string }{
	{"tinygo", ".wasm"}, {"go", ".go.wasm"}, {"rust", ".rust.wasm"}, {"c", ".c.wasm"},
}

// Every example's cases pass against every build of it, and inspect and
// run accept each build. A missing build is skipped, or fails under CI
// (make test builds every language first).
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*", "*.cases.toml"))
	if len(files) == 0 {
		t.Fatal("no examples/*/*.cases.toml")
	}
	for _, file := range files {
		dir := filepath.Dir(file)
		name := filepath.Base(dir)
		cs, err := LoadCases(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range builds {
			mod := filepath.Join(dir, name+b.suffix)
			if b.lang == "c" && !hasSource(dir, "c") || b.lang == "rust" && !hasSource(dir, "rust") {
				continue
			}
			t.Run(name+"/"+b.lang, func(t *testing.T) {
				if _, err := os.Stat(mod); err != nil {
					if os.Getenv("CI") != "" {
						t.Fatalf("%s missing and CI is set: run make filters", mod)
					}
					t.Skipf("%s missing: run make filters", mod)
				}
				// A standard Go build is megabytes of code that takes many
				// seconds to compile under the race detector: run its cases,
				// and leave inspect and run to the other builds there.
				checkExample(t, cs, file, mod, !(raceEnabled && b.lang == "go"))
			})
		}
	}
}

func hasSource(dir, sub string) bool {
	_, err := os.Stat(filepath.Join(dir, sub))
	return err == nil
}

func checkExample(t *testing.T, cs *Cases, file, mod string, all bool) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if code := Test(ctx, TestOptions{Files: []string{file}, Modules: []string{mod}}, &out, &errOut); code != 0 {
		t.Fatalf("filter test: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), " 0 failed") {
		t.Fatalf("filter test output:\n%s", out.String())
	}
	if !all {
		return
	}

	cfg := filepath.Join(t.TempDir(), "config.toml")
	var b bytes.Buffer
	if err := tomlEncode(&b, cs.Config); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, b.Bytes(), 0o644)
	plugin := Plugin{Module: mod, ConfigFile: cfg}
	out.Reset()
	errOut.Reset()
	if code := Inspect(ctx, InspectOptions{Plugin: plugin}, &out, &errOut); code != 0 {
		t.Fatalf("filter inspect: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "abi        v1") || !strings.Contains(out.String(), "status     OK") {
		t.Fatalf("filter inspect:\n%s", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := Run(ctx, RunOptions{Plugin: plugin, URL: "/"}, &out, &errOut); code != 0 {
		t.Fatalf("filter run: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
