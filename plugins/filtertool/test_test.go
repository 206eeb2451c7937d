package filtertool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func testCases(t *testing.T, o TestOptions) (int, string, string) {
	return run(t, func(stdout, stderr *bytes.Buffer) int { return Test(context.Background(), o, stdout, stderr) })
}

func TestCasesPass(t *testing.T) {
	code, out, errOut := testCases(t, TestOptions{Files: []string{filepath.Join(fixtureDir, "tour.cases.toml")}})
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	mustContain(t, "stdout", out, "ok   ", "a request gets X-Tour", "3 passed, 0 failed")
}

// A module that does something else fails each case with the difference.
func TestCasesShowDifferences(t *testing.T) {
	code, out, _ := testCases(t, TestOptions{Files: []string{filepath.Join(fixtureDir, "tour.cases.toml")}, Modules: []string{fixture("misuse")}})
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	mustContain(t, "stdout", out,
		"FAIL ", "tour.cases.toml:4)",
		"failure: want none, got misuse in request_headers: returned ActionRespond (1) without calling send_response",
		"0 passed, 3 failed")
}

func TestCasesExpectFailure(t *testing.T) {
	dir := t.TempDir()
	cases := filepath.Join(dir, "c.toml")
	os.WriteFile(cases, []byte("[[case]]\nname = \"stopped\"\n  [case.expect]\n  failure = \"timeout\"\n"), 0o644)
	code, out, _ := testCases(t, TestOptions{Files: []string{cases}, Modules: []string{fixture("loop")}})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	code, out, _ = testCases(t, TestOptions{Files: []string{cases}, Modules: []string{fixture("trap")}})
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	mustContain(t, "stdout", out, `failure: want timeout, got trap in request_headers`)
}

func TestCasesFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tt := range map[string]struct{ doc, want string }{
		"unknown key": {"[[case]]\nname = \"x\"\n  [case.expect.request_headers]\n  actoin = \"respond\"\n", `unknown key "case.expect.request_headers.actoin"`},
		"no cases":    {"module = \"x.wasm\"\n", "no [[case]]"},
		"no module":   {"[[case]]\nname = \"x\"\n", "names no module"},
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, name+".toml")
			os.WriteFile(f, []byte(tt.doc), 0o644)
			code, _, errOut := testCases(t, TestOptions{Files: []string{f}})
			if code != 2 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			mustContain(t, "stderr", errOut, tt.want)
		})
	}
}
