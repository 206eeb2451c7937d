package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/tetratelabs/wazero"
)

// ModuleInfo describes a filter module as the loader sees it: what its
// binary declares, and what one instance, prepared exactly as the proxy
// prepares it, answers.
type ModuleInfo struct {
	// Size is the module's length in bytes.
	Size int
	// SHA256 is the hex digest of the module, the value a [[plugin]]'s
	// sha256 pin takes.
	SHA256 string
	// ABIVersion is what sluice_abi_version returned; 0 when the module
	// could not be instantiated (see Problems).
	ABIVersion int32
	// Exported is the set of hook exports; Hooks is the subset the proxy
	// calls, after sluice_hooks (which may depend on the config).
	Exported, Hooks abi.Hooks
	// DeclaresHooks reports whether the module exports sluice_hooks.
	DeclaresHooks bool
	// Features is what sluice_features returned.
	Features abi.Features
	// Imports lists every imported function, sorted by module and name.
	Imports []Import
	// MemoryMin and MemoryMax are the exported memory's limits in 64 KiB
	// pages; MemoryMax is 0 when the module sets none (the plugin's
	// memory_limit then caps it).
	MemoryMin, MemoryMax uint32
	// Problems is every reason the loader would refuse the module, in the
	// words of its errors; empty for a module the proxy accepts.
	Problems []string
}

// Import is one function a module imports.
type Import struct {
	Module, Name string
	// Signature is written the way abi/ABI.md writes it: "(i32, i32) -> i32".
	Signature string
}

// InspectOptions are the settings Inspect prepares the instance with.
type InspectOptions struct {
	// Config is the plugin's config as JSON; nil means "{}". A filter whose
	// sluice_configure refuses it reports that in ModuleInfo.Problems.
	Config []byte
	// MemoryLimit is the plugin's memory_limit; 0 means DefaultMemoryLimit.
	MemoryLimit uint64
	// Logger receives what the guest logs while it is prepared. Nil
	// discards it.
	Logger *slog.Logger
}

// Inspect compiles bin in a sandbox configured as the proxy's, checks it as
// the loader does, and, when it passes, prepares one instance (_initialize,
// the ABI version, sluice_configure with opts.Config, sluice_features and
// sluice_hooks) to report what the proxy would see. A module the loader
// would refuse is not an error: ModuleInfo.Problems says why.
//
// # Errors
//
// Only an error of the runtime itself, or bin not being a WebAssembly module
// at all.
func Inspect(ctx context.Context, bin []byte, opts InspectOptions) (*ModuleInfo, error) {
	sum := sha256.Sum256(bin)
	info := &ModuleInfo{Size: len(bin), SHA256: hex.EncodeToString(sum[:])}
	limit := opts.MemoryLimit
	if limit == 0 {
		limit = DefaultMemoryLimit
	}
	pages := min(max(limit/pageSize, 1), 65536)

	cache := wazero.NewCompilationCache()
	defer cache.Close(ctx)
	rt, compiled, err := compile(ctx, cache, bin, uint32(pages), config.DefaultPluginCompileTimeout)
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	defer rt.Close(ctx)
	describe(info, compiled)
	if min, ok := minMemoryPages(bin); ok && min > pages {
		info.Problems = append(info.Problems, fmt.Sprintf("declares a minimum memory of %s (%d pages), over a memory_limit of %s (%d pages)",
			sizeString(min*pageSize), min, sizeString(pages*pageSize), pages))
	}
	info.Problems = append(info.Problems, checkModule(compiled, bin)...)
	if len(info.Problems) > 0 {
		return info, nil
	}

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	store := NewMemoryStore(0)
	defer store.Close()
	p := &plugin{
		name:    "inspect",
		path:    "module",
		mod:     &module{rt: rt, compiled: compiled},
		config:  opts.Config,
		timeout: DefaultTimeout,
		logger:  logger,
		shared:  store,
		// Preparing an instance takes a gate token, as in the proxy;
		// Inspect prepares one at a time.
		gate: make(chan struct{}, 1),
	}
	if p.config == nil {
		p.config = []byte("{}")
	}
	p.modCfg = p.baseModuleConfig()
	in, version, err := p.instantiate(ctx)
	info.ABIVersion = version
	if err != nil {
		info.Problems = append(info.Problems, trimPluginPrefix(p, err))
		return info, nil
	}
	defer in.close()
	if err := p.configure(in); err != nil {
		// The hooks the proxy would call are still worth showing: an SDK
		// answers sluice_hooks from what the filter registered.
		info.Problems = append(info.Problems, trimPluginPrefix(p, err))
		if in.mod.IsClosed() {
			return info, nil
		}
	}
	if err := p.readDeclarations(in); err != nil {
		info.Problems = append(info.Problems, trimPluginPrefix(p, err))
		return info, nil
	}
	info.Hooks, info.Features = p.hooks, p.features
	return info, nil
}

// describe fills in what the compiled module declares.
func describe(info *ModuleInfo, c wazero.CompiledModule) {
	exports := c.ExportedFunctions()
	for h, name := range hookExports {
		if _, ok := exports[name]; ok {
			info.Exported |= 1 << h
		}
	}
	info.Hooks = info.Exported
	_, info.DeclaresHooks = exports[abi.FuncHooks]
	for _, def := range c.ImportedFunctions() {
		mod, name, _ := def.Import()
		info.Imports = append(info.Imports, Import{Module: mod, Name: name, Signature: sigString(sigOf(def))})
	}
	sort.Slice(info.Imports, func(i, j int) bool {
		a, b := info.Imports[i], info.Imports[j]
		if a.Module != b.Module {
			return a.Module < b.Module
		}
		return a.Name < b.Name
	})
	if m, ok := c.ExportedMemories()[abi.MemoryExport]; ok {
		info.MemoryMin = m.Min()
		if max, ok := m.Max(); ok {
			info.MemoryMax = max
		}
	}
}

// HookNames returns the export names of the hooks in hs, in ABI order.
func HookNames(hs abi.Hooks) []string {
	var names []string
	for h, name := range hookExports {
		if hs&(1<<h) != 0 {
			names = append(names, name)
		}
	}
	return names
}

// trimPluginPrefix drops the "plugins: plugin "x" (file): " that p.errf
// puts before a load error: an inspected module has no plugin name.
func trimPluginPrefix(p *plugin, err error) string {
	prefix := p.errf("").Error()
	s := err.Error()
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}
