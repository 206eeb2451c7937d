package filtertool

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

func inspect(t *testing.T, o InspectOptions) (int, string, string) {
	return run(t, func(stdout, stderr *bytes.Buffer) int { return Inspect(context.Background(), o, stdout, stderr) })
}

func TestInspect(t *testing.T) {
	bin, _ := os.ReadFile(fixture("tour"))
	sum := sha256.Sum256(bin)
	code, out, errOut := inspect(t, InspectOptions{Plugin: Plugin{Module: fixture("tour")}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	mustContain(t, "stdout", out,
		`pin        sha256 = "`+hex.EncodeToString(sum[:])+`"`,
		"abi        v1 (host speaks v1)",
		"hooks      sluice_on_request_headers, sluice_on_response_headers, sluice_on_message, sluice_on_close",
		"memory     min 1 pages (64KiB), max none",
		"sluice.shared_add (i32, i32, i64, i64) -> i64",
		"wasi_snapshot_preview1.fd_write (i32, i32, i32, i32) -> i32",
		"status     OK")

	code, out, _ = inspect(t, InspectOptions{Plugin: Plugin{Module: fixture("tour")}, JSON: true})
	var r InspectReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if r.SHA256 != hex.EncodeToString(sum[:]) || r.Size != len(bin) || r.ABIVersion != 1 || len(r.Hooks) != 4 || len(r.Problems) != 0 {
		t.Fatalf("report %+v", r)
	}
}

func TestInspectRefused(t *testing.T) {
	for module, want := range map[string][]string{
		"command":  {"REFUSED: is a WASI command module"},
		"version2": {"abi        v2 (host speaks v1)", "REFUSED: built for ABI v2, this host speaks v1"},
	} {
		t.Run(module, func(t *testing.T) {
			code, out, _ := inspect(t, InspectOptions{Plugin: Plugin{Module: fixture(module)}})
			if code != 1 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			mustContain(t, "stdout", out, want...)
		})
	}
}
