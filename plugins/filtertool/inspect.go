package filtertool

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/plugins"
)

// InspectOptions are the inputs of Inspect.
type InspectOptions struct {
	Plugin
	// JSON prints one JSON object instead of text.
	JSON bool
}

// InspectReport is what `sluice filter inspect -json` prints.
type InspectReport struct {
	Module     string           `json:"module"`
	Size       int              `json:"size"`
	SHA256     string           `json:"sha256"`
	ABIVersion int32            `json:"abi_version"`
	HostABI    int32            `json:"host_abi_version"`
	Hooks      []string         `json:"hooks"`
	Exported   []string         `json:"exported_hooks"`
	Features   []string         `json:"features"`
	Imports    []plugins.Import `json:"imports"`
	MemoryMin  uint32           `json:"memory_min_pages"`
	MemoryMax  uint32           `json:"memory_max_pages,omitempty"`
	Limit      uint64           `json:"memory_limit"`
	Problems   []string         `json:"problems"`
}

// Inspect describes a module: its size, the sha256 to pin in proxy.toml,
// its ABI version, the hooks the proxy would call, its imports and memory
// limits, and every reason the proxy would refuse it. It returns the exit
// status: 0 when the proxy accepts the module, 1 when it would refuse it,
// 2 when it cannot be read.
func Inspect(ctx context.Context, opts InspectOptions, stdout, stderr io.Writer) int {
	pc, err := opts.settings()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	bin, err := os.ReadFile(pc.Module)
	if err != nil {
		fmt.Fprintln(stderr, "filtertool:", err)
		return 2
	}
	cfg, err := configJSON(pc.Config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	limit := uint64(pc.WithDefaults().MemoryLimit)
	info, err := plugins.Inspect(ctx, bin, plugins.InspectOptions{Config: cfg, MemoryLimit: limit})
	if err != nil {
		fmt.Fprintf(stderr, "filtertool: %s: %v\n", pc.Module, err)
		return 1
	}
	r := InspectReport{
		Module: pc.Module, Size: info.Size, SHA256: info.SHA256,
		ABIVersion: info.ABIVersion, HostABI: abi.Version,
		Hooks: nonNil(plugins.HookNames(info.Hooks)), Exported: nonNil(plugins.HookNames(info.Exported)),
		Features: featureNames(info.Features), Imports: info.Imports,
		MemoryMin: info.MemoryMin, MemoryMax: info.MemoryMax, Limit: limit,
		Problems: nonNil(info.Problems),
	}
	if r.Imports == nil {
		r.Imports = []plugins.Import{}
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		printInspect(stdout, &r, info.DeclaresHooks)
	}
	if len(r.Problems) > 0 {
		return 1
	}
	return 0
}

func printInspect(w io.Writer, r *InspectReport, declares bool) {
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-10s %s\n", k, fmt.Sprintf(format, args...)) }
	row("module", "%s", r.Module)
	row("size", "%s (%d bytes)", byteSize(uint64(r.Size)), r.Size)
	row("sha256", "%s", r.SHA256)
	row("pin", "sha256 = %q", r.SHA256)
	if r.ABIVersion == 0 {
		row("abi", "unknown (the module did not run; host speaks v%d)", r.HostABI)
	} else {
		row("abi", "v%d (host speaks v%d)", r.ABIVersion, r.HostABI)
	}
	hooks := strings.Join(r.Hooks, ", ")
	if hooks == "" {
		hooks = "none"
	}
	if declares && len(r.Hooks) != len(r.Exported) {
		hooks += fmt.Sprintf("  (exports %s; sluice_hooks keeps these)", strings.Join(r.Exported, ", "))
	}
	row("hooks", "%s", hooks)
	features := strings.Join(r.Features, ", ")
	if features == "" {
		features = "none"
	}
	row("features", "%s", features)
	max := "none (memory_limit caps it)"
	if r.MemoryMax > 0 {
		max = fmt.Sprintf("%d pages (%s)", r.MemoryMax, byteSize(uint64(r.MemoryMax)<<16))
	}
	row("memory", "min %d pages (%s), max %s; memory_limit %s", r.MemoryMin, byteSize(uint64(r.MemoryMin)<<16), max, byteSize(r.Limit))
	if len(r.Imports) == 0 {
		row("imports", "none")
	}
	for i, im := range r.Imports {
		k := ""
		if i == 0 {
			k = "imports"
		}
		row(k, "%s.%s %s", im.Module, im.Name, im.Signature)
	}
	if len(r.Problems) == 0 {
		row("status", "OK: the proxy accepts this module")
		return
	}
	for i, p := range r.Problems {
		k := ""
		if i == 0 {
			k = "status"
		}
		row(k, "REFUSED: %s", p)
	}
}

func featureNames(f abi.Features) []string {
	names := []string{}
	if f&abi.FeatureRequestBody != 0 {
		names = append(names, "request_body")
	}
	if f&abi.FeatureResponseBody != 0 {
		names = append(names, "response_body")
	}
	return names
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// byteSize writes n in the units config files use.
func byteSize(n uint64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
