package sdkfiles

import (
	"os"
	"testing"
)

// The embedded copy is the SDK in sdk/: run `go generate
// ./plugins/filtertool/...` after changing the SDK.
func TestArchiveIsCurrent(t *testing.T) {
	want, err := Collect("../../../../sdk")
	if err != nil {
		t.Fatal(err)
	}
	if got := Encode(want); got != archive {
		t.Fatal("sdk.txt differs from sdk/: run go generate ./plugins/filtertool/...")
	}
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Fatalf("decoded %d files, want %d", len(files), len(want))
	}
	for i := range files {
		if files[i] != want[i] {
			t.Fatalf("file %s does not round-trip", want[i].Path)
		}
	}
	for _, must := range []string{"go/go.mod", "go/sluice.go", "go/sluicetest/sluicetest.go", "rust/Cargo.toml", "rust/src/lib.rs"} {
		found := false
		for _, f := range files {
			found = found || f.Path == must
		}
		if !found {
			t.Errorf("%s is not in the archive", must)
		}
	}
	if _, err := os.Stat("sdk.txt"); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	for _, bad := range []string{"", Header + "=== a.go 10\nshort\n", Header + "junk\n", Header + "=== a.go x\n\n"} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%q) succeeded", bad)
		}
	}
}
