package plugins

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// The deadline instrumentation shifts every function index; indices.wat
// reaches its functions through every kind of index and traps if one is off.
// The second variant carries a name section, which is rewritten too.
func TestInstrumentKeepsEveryIndex(t *testing.T) {
	named := filepath.Join(t.TempDir(), "indices-names.wasm")
	if b, err := exec.Command("wat2wasm", "--debug-names", "testdata/indices.wat", "-o", named).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	for name, path := range map[string]string{"plain": fixture(t, "indices"), "names": named} {
		t.Run(name, func(t *testing.T) {
			e := load(t, plug("i", "indices", func(p *config.Plugin) { p.Module = path }))
			if r := e.chain(t).OnRequestHeaders(exchange("/")); r != nil {
				t.Fatalf("reply %+v, want the request to continue; log:\n%s", r, e.logs)
			}
		})
	}
}

// Recursion without a loop is stopped too: the checks sit at function
// entries as well as in loops.
func TestRecursionWithoutLoopsIsStopped(t *testing.T) {
	e := load(t, plug("r", "recurse_noloop", func(p *config.Plugin) { p.Timeout.Duration = 20 * time.Millisecond }))
	start := time.Now()
	if r := e.chain(t).OnRequestHeaders(exchange("/")); r == nil || r.Status != 503 {
		t.Fatalf("reply %+v, want 503", r)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the call took %v with a 20ms deadline", d)
	}
	if s := e.stats("r"); s.Timeouts != 1 {
		t.Errorf("stats %+v, want one timeout", s)
	}
}

// A guest that imports the deadline check itself gains nothing from it.
func TestGuestImportingTheDeadlineCheck(t *testing.T) {
	e := load(t, plug("o", "own_tick"))
	if r := e.chain(t).OnRequestHeaders(exchange("/")); r != nil {
		t.Fatalf("reply %+v, want the request to continue", r)
	}
}

func TestInstrumentRefusesWhatItCannotFollow(t *testing.T) {
	// (func) whose body holds the undefined opcode 0xff.
	bin := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" +
		"\x03\x02\x01\x00" +
		"\x0a\x05\x01\x03\x00\xff\x0b")
	_, err := instrument(bin)
	if err == nil || !strings.Contains(err.Error(), "unknown instruction 0xff") {
		t.Fatalf("error %v, want the unknown instruction named", err)
	}
}

// FuzzInstrument: whatever the bytes, instrument returns an error or a
// module; it never panics. Seeds: every fixture.
func FuzzInstrument(f *testing.F) {
	wats, _ := filepath.Glob(filepath.Join("testdata", "*.wat"))
	for _, w := range wats {
		if b, err := os.ReadFile(fixture(f, strings.TrimSuffix(filepath.Base(w), ".wat"))); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, bin []byte) {
		_, _ = instrument(bin)
		_ = checkShape(bin)
	})
}
