package plugins

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// wasiModule is the only import module besides abi.HostModule a guest may use.
const wasiModule = "wasi_snapshot_preview1"

// pageSize is the size of a WebAssembly memory page.
const pageSize = 65536

// checkModule verifies a compiled guest against the ABI: it is a reactor,
// not a command; its imports come from abi.HostModule (known names, exact
// signatures) or WASI only; it exports its memory and the ABI version; and
// every known export has the signature in abi.Exports. bin is the module's
// binary, read for hints about the toolchain that built it. It returns every
// problem found, each phrased to follow "plugin "x" (file): ".
func checkModule(c wazero.CompiledModule, bin []byte) []string {
	if p := commandModule(c, bin); p != "" {
		// Nothing else is worth reporting: the fix is a rebuild.
		return []string{p}
	}
	var bad []string
	for _, def := range c.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case abi.HostModule:
			want, ok := abi.Imports[name]
			if !ok {
				bad = append(bad, fmt.Sprintf("imports %s.%s, which this host does not provide", mod, name))
				continue
			}
			if got := sigOf(def); !sameSig(got, want) {
				bad = append(bad, fmt.Sprintf("imports %s.%s with signature %s, but this host provides %s",
					mod, name, sigString(got), sigString(want)))
			}
		case wasiModule:
			// Checked by wazero at instantiation against what WASI provides.
		case tickModule:
			// Added by instrument; harmless if the guest imports it too.
		default:
			bad = append(bad, fmt.Sprintf("imports %s.%s: a filter may import only from %q and %q",
				mod, name, abi.HostModule, wasiModule))
		}
	}
	for _, m := range c.ImportedMemories() {
		mod, name, _ := m.Import()
		bad = append(bad, fmt.Sprintf("imports memory %s.%s: a filter must define and export its own memory", mod, name))
	}
	if _, ok := c.ExportedMemories()[abi.MemoryExport]; !ok {
		bad = append(bad, fmt.Sprintf("does not export its memory as %q", abi.MemoryExport))
	}
	exports := c.ExportedFunctions()
	if _, ok := exports[abi.FuncABIVersion]; !ok {
		bad = append(bad, fmt.Sprintf("does not export %s: it was not built with a Sluice SDK for ABI v%d", abi.FuncABIVersion, abi.Version))
	}
	names := make([]string, 0, len(abi.Exports))
	for name := range abi.Exports {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		def, ok := exports[name]
		if !ok {
			continue
		}
		if got, want := sigOf(def), abi.Exports[name]; !sameSig(got, want) {
			bad = append(bad, fmt.Sprintf("exports %s with signature %s, want %s", name, sigString(got), sigString(want)))
		}
	}
	return bad
}

// commandModule explains, when c is a WASI command (it exports _start and no
// _initialize), why the host cannot run it and how to build a reactor. The
// host never calls _start: it would run main and exit. A Go command's runtime
// is then never initialised, and its first exported call dies with
// "unreachable"; the loader refuses such a module up front instead.
func commandModule(c wazero.CompiledModule, bin []byte) string {
	exports := c.ExportedFunctions()
	if _, ok := exports["_start"]; !ok {
		return ""
	}
	if _, ok := exports["_initialize"]; ok {
		return ""
	}
	const head = "is a WASI command module (it exports _start, not _initialize): the proxy calls its exports without running main, so it must be built as a reactor"
	switch builtBy(bin) {
	case "go":
		return head + ": GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm ."
	case "tinygo":
		return head + ": tinygo build -target=wasip1 -buildmode=c-shared -scheduler=none -o filter.wasm ."
	}
	return head + " (Go: go build -buildmode=c-shared; TinyGo: tinygo build -buildmode=c-shared; C: clang -mexec-model=reactor; Rust: crate-type = [\"cdylib\"])"
}

// builtBy names the toolchain that wrote bin, from the custom sections Go
// ("go:buildid") and TinyGo (its "producers" entry) leave; "" when unknown.
func builtBy(bin []byte) string {
	var by string
	walkSections(bin, func(id byte, body []byte) bool {
		if id != 0 {
			return true
		}
		n, k := uleb(body)
		if k == 0 || uint64(len(body)-k) < n {
			return false
		}
		name, rest := string(body[k:k+int(n)]), body[k+int(n):]
		switch {
		case name == "go:buildid":
			by = "go"
		case name == "producers" && bytes.Contains(rest, []byte("TinyGo")):
			by = "tinygo"
		}
		return by == ""
	})
	return by
}

// walkSections calls f with the id and body of each section of a WebAssembly
// binary, in order, until f returns false or the binary ends or is malformed.
func walkSections(bin []byte, f func(id byte, body []byte) bool) {
	if len(bin) < 8 || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return
	}
	p := bin[8:]
	for len(p) > 0 {
		id := p[0]
		size, n := uleb(p[1:])
		if n == 0 || uint64(len(p)-1-n) < size {
			return
		}
		body := p[1+n : 1+n+int(size)]
		p = p[1+n+int(size):]
		if !f(id, body) {
			return
		}
	}
}

func sigOf(def api.FunctionDefinition) abi.Signature {
	var s abi.Signature
	for _, t := range def.ParamTypes() {
		s.Params = append(s.Params, abi.ValueType(t))
	}
	for _, t := range def.ResultTypes() {
		s.Results = append(s.Results, abi.ValueType(t))
	}
	return s
}

func sameSig(a, b abi.Signature) bool {
	return bytes.Equal(valueBytes(a.Params), valueBytes(b.Params)) &&
		bytes.Equal(valueBytes(a.Results), valueBytes(b.Results))
}

func valueBytes(ts []abi.ValueType) []byte {
	b := make([]byte, len(ts))
	for i, t := range ts {
		b[i] = byte(t)
	}
	return b
}

// sigString formats a signature the way ABI.md writes it: "(i32, i32) -> i32".
func sigString(s abi.Signature) string {
	list := func(ts []abi.ValueType) string {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = api.ValueTypeName(api.ValueType(t))
		}
		return strings.Join(parts, ", ")
	}
	out := "(" + list(s.Params) + ")"
	switch len(s.Results) {
	case 0:
	case 1:
		out += " -> " + list(s.Results)
	default:
		out += " -> (" + list(s.Results) + ")"
	}
	return out
}

// minMemoryPages reads the largest minimum size (in pages) of the memories a
// module defines, from its binary. It lets the loader explain a module that
// asks for more memory than its plugin's memory_limit before wazero refuses
// it in its own words. ok is false when the binary has no memory section or
// cannot be read (then wazero reports what is wrong).
func minMemoryPages(bin []byte) (pages uint64, ok bool) {
	walkSections(bin, func(id byte, body []byte) bool {
		if id != 5 { // the memory section
			return true
		}
		pages, ok = memoryMinimum(body)
		return false
	})
	return pages, ok
}

// memoryMinimum reads the largest minimum of the memories in a memory
// section's body.
func memoryMinimum(body []byte) (pages uint64, ok bool) {
	count, n := uleb(body)
	if n == 0 {
		return 0, false
	}
	body = body[n:]
	for i := uint64(0); i < count; i++ {
		if len(body) == 0 {
			return 0, false
		}
		flags := body[0]
		min, n := uleb(body[1:])
		if n == 0 {
			return 0, false
		}
		body = body[1+n:]
		if flags&1 != 0 { // a maximum follows
			_, n = uleb(body)
			if n == 0 {
				return 0, false
			}
			body = body[n:]
		}
		if min > pages {
			pages = min
		}
		ok = true
	}
	return pages, ok
}

// uleb decodes an unsigned LEB128 number; n is 0 when it is malformed.
func uleb(b []byte) (v uint64, n int) {
	var shift uint
	for i, c := range b {
		if i == 10 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

// sizeString writes a byte count the way config files do: "16MiB", "64KiB".
func sizeString(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
