package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/metrics"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Defaults for [[plugin]] settings left at zero, as the config package
// defines them (config.Plugin.WithDefaults).
const (
	DefaultTimeout        = config.DefaultPluginTimeout
	DefaultMemoryLimit    = config.DefaultPluginMemoryLimit
	DefaultMaxModuleSize  = config.DefaultPluginMaxModuleSize
	DefaultCompileTimeout = config.DefaultPluginCompileTimeout
)

// compileWorkers is how many goroutines compile one module: at least two,
// because only then does wazero stop at a deadline.
const compileWorkers = 2

// LoaderOptions configures a Loader.
type LoaderOptions struct {
	// Logger receives the loader's messages and everything guests log
	// (records carry plugin=<name>). Nil means slog.Default().
	Logger *slog.Logger
	// Shared is the store behind the shared_* host functions. Nil means a
	// MemoryStore that the Loader owns and closes.
	Shared SharedStore
	// BaseDir resolves relative module paths, typically the directory of the
	// config file. Empty means the working directory.
	BaseDir string
	// Metrics receives the plugins' metrics (hook calls, outcomes,
	// failures, instances, memory). Nil means a registry of the Loader's
	// own, which nothing serves.
	Metrics *metrics.Registry
}

// Loader compiles filter modules and builds Sets from configs. It owns the
// wazero compilation cache and the compiled modules, which it keeps while a
// Set uses them, keyed by the module's content (sha256) and memory limit, so
// a reload that keeps a module does not compile it again.
//
// # Lifecycle
//
// NewLoader once at start-up; Load for the first config and again for each
// reload (each Load builds a whole new Set); once the proxy has switched to
// the new Set's chains and the old Set's requests are done, Close the old
// Set. Close the Loader last, after every Set. Nothing is left to finalizers.
type Loader struct {
	logger   *slog.Logger
	shared   SharedStore
	ownStore *MemoryStore
	baseDir  string
	cache    wazero.CompilationCache
	metrics  *metrics.Registry

	// gate bounds how many goroutines run guest code that may not return
	// soon: instance creation, and calls of plugins that timed out
	// recently. It has GOMAXPROCS-1 tokens (at least one), so that a
	// processor is always left for the timers and the watchers that stop
	// guests at their deadline (see RATIONALE.md, "Deadlines under a flood").
	gate chan struct{}

	mu      sync.Mutex
	modules map[moduleKey]*module
	sets    map[*Set]struct{} // Sets loaded and not closed yet
	closed  bool
}

// moduleKey identifies a compiled module: its bytes and the memory limit of
// the runtime it was compiled in (wazero checks memory sizes at compile).
type moduleKey struct {
	sum   [sha256.Size]byte
	pages uint32
	stack uint32 // stack_limit, which the stack guard compiles in
}

// module is a compiled module in its own runtime, shared by the plugins of
// every live Set that use the same bytes and memory limit. The runtime also
// holds WASI and the host module; closing it frees all of them.
type module struct {
	key      moduleKey
	refs     int
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	// stackCheck is the stack guard's counter value past which it traps.
	stackCheck uint32
	// problems found when checking the module against the ABI; every plugin
	// using it reports them.
	problems []string
	// ready is closed when compilation ended, with err set if it failed.
	ready chan struct{}
	err   error
}

// NewLoader returns a Loader. It starts nothing but the shared store's
// sweep (when it creates the store).
func NewLoader(opts LoaderOptions) *Loader {
	l := &Loader{
		logger:  opts.Logger,
		shared:  opts.Shared,
		baseDir: opts.BaseDir,
		cache:   wazero.NewCompilationCache(),
		modules: make(map[moduleKey]*module),
		metrics: opts.Metrics,
		gate:    make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1)),
		sets:    make(map[*Set]struct{}),
	}
	if l.metrics == nil {
		l.metrics = metrics.New(metrics.BuildInfo{})
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if l.shared == nil {
		l.ownStore = NewMemoryStore(0)
		l.shared = l.ownStore
	}
	return l
}

// Close closes the Loader: the compiled modules still held (by Sets not
// closed: a caller bug, reported as an error) and the compilation cache.
// A Set still open is closed first, as Set.Close does: its calls are cut
// short and have returned before the runtimes go. Closing a runtime under a
// running guest would unmap the memory the guest is writing to.
func (l *Loader) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	open := make([]*Set, 0, len(l.sets))
	for s := range l.sets {
		open = append(open, s)
	}
	l.mu.Unlock()
	var errs []error
	if len(open) > 0 {
		errs = append(errs, fmt.Errorf("plugins: loader closed while %d Set(s) were open: closed them first", len(open)))
		for _, s := range open {
			s.Close()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.modules); n > 0 {
		errs = append(errs, fmt.Errorf("plugins: loader closed while %d module(s) are in use by a Set", n))
		for k, m := range l.modules {
			if m.compiled != nil {
				errs = append(errs, m.compiled.Close(context.Background()))
			}
			if m.rt != nil {
				errs = append(errs, m.rt.Close(context.Background()))
			}
			delete(l.modules, k)
		}
	}
	errs = append(errs, l.cache.Close(context.Background()))
	if l.ownStore != nil {
		errs = append(errs, l.ownStore.Close())
	}
	return errors.Join(errs...)
}

// acquire returns the compiled module for bin under a memory limit,
// compiling it in a new runtime unless a live Set already holds it. Plugins
// load in parallel; two that need the same module wait for one compilation.
func (l *Loader) acquire(ctx context.Context, bin []byte, sum [sha256.Size]byte, pages, stack uint32, timeout time.Duration) (*module, error) {
	key := moduleKey{sum: sum, pages: pages, stack: stack}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("plugins: loader is closed")
	}
	if m := l.modules[key]; m != nil {
		m.refs++
		l.mu.Unlock()
		<-m.ready
		if m.err != nil {
			l.release(m)
			return nil, m.err
		}
		return m, nil
	}
	m := &module{key: key, refs: 1, ready: make(chan struct{})}
	l.modules[key] = m
	l.mu.Unlock()

	guarded, check, err := guardStack(bin, stack)
	m.stackCheck = check
	if err != nil {
		m.err = fmt.Errorf("compile: %w", err)
	} else {
		m.rt, m.compiled, m.err = compile(ctx, l.cache, guarded, pages, timeout)
	}
	if m.err == nil {
		m.problems = checkModule(m.compiled, bin)
	}
	close(m.ready)
	if m.err != nil {
		l.release(m)
		return nil, m.err
	}
	return m, nil
}

// compile makes a runtime with the memory limit, WASI and the host module,
// and compiles bin in it within timeout. wazero checks the deadline between
// functions only when it compiles with several workers, so it compiles with
// two; checkShape has bounded what one function can cost.
func compile(ctx context.Context, cache wazero.CompilationCache, bin []byte, pages uint32, timeout time.Duration) (wazero.Runtime, wazero.CompiledModule, error) {
	bin, err := instrument(bin)
	if err != nil {
		return nil, nil, err
	}
	// No WithCloseOnContextDone: the instrumented guest checks its own
	// deadline (instrument.go).
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(pages)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, nil, fmt.Errorf("plugins: WASI: %w", err)
	}
	if err := instantiateHost(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, nil, err
	}
	if err := instantiateTick(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(experimental.WithCompilationWorkers(ctx, compileWorkers), timeout*compileSlowdown)
	defer cancel()
	compiled, err := rt.CompileModule(cctx, bin)
	if err != nil {
		_ = rt.Close(ctx)
		if cctx.Err() != nil {
			return nil, nil, fmt.Errorf("compile: did not finish within compile_timeout (%s)", timeout)
		}
		return nil, nil, fmt.Errorf("compile: %w", err)
	}
	return rt, compiled, nil
}

// release drops a reference to m, closing its runtime with the last one.
func (l *Loader) release(m *module) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	if l.modules[m.key] == m {
		delete(l.modules, m.key)
	}
	// Closing the runtime does not free the compiled code: the engine that
	// holds it belongs to the shared compilation cache and counts the
	// references of every CompiledModule, so each must be closed too.
	if m.compiled != nil {
		_ = m.compiled.Close(context.Background())
	}
	if m.rt != nil {
		_ = m.rt.Close(context.Background())
	}
}

// Set is one generation of plugins: every [[plugin]] of a config, ready,
// and the filter chain of every route that has plugins.
type Set struct {
	loader  *Loader
	plugins []*plugin
	chains  map[string]filter.Chain
	once    sync.Once
}

// Load builds a Set from cfg: it reads, checks and compiles every
// [[plugin]]'s module (reusing modules the Loader already holds), creates
// and configures its first instances, and builds each route's chain. It is
// all or nothing: on any error, what it built is closed again.
//
// # Errors
//
// The first problem found, naming the plugin and its module file, e.g.
//
//	plugins: plugin "auth" (examples/auth/auth.wasm): built for ABI v2, this host speaks v1
func (l *Loader) Load(ctx context.Context, cfg *config.Config) (*Set, error) {
	return l.LoadModules(ctx, cfg, nil)
}

// LoadModules is Load with module bytes the caller already read: modules
// maps a plugin's name to its module file's contents, so that what the
// caller fingerprinted is exactly what is pinned, compiled and reported
// by Set.Modules. A plugin missing from modules has its file read.
func (l *Loader) LoadModules(ctx context.Context, cfg *config.Config, modules map[string][]byte) (*Set, error) {
	s := &Set{loader: l, chains: make(map[string]filter.Chain)}
	// Build the plugins in parallel: distinct modules compile side by side
	// and Go filters' instances start (milliseconds each) concurrently.
	// Report the first error in config order.
	built := make([]*plugin, len(cfg.Plugins))
	errs := make([]error, len(cfg.Plugins))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, pc := range cfg.Plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			built[i], errs[i] = l.build(ctx, pc, cfg.Server, modules[pc.Name])
		}()
	}
	wg.Wait()
	byName := make(map[string]*plugin, len(cfg.Plugins))
	for _, p := range built {
		if p != nil {
			s.plugins = append(s.plugins, p)
			byName[p.name] = p
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = s.Close()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
	}
	for _, r := range cfg.Routes {
		if len(r.Plugins) == 0 {
			continue
		}
		ps := make([]*plugin, 0, len(r.Plugins))
		for _, name := range r.Plugins {
			p := byName[name]
			if p == nil {
				_ = s.Close()
				return nil, fmt.Errorf("plugins: route %q: no [[plugin]] is named %q", r.Name, name)
			}
			ps = append(ps, p)
		}
		s.chains[r.Name] = newChain(r.Name, ps)
	}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.sets[s] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		_ = s.Close()
		return nil, errors.New("plugins: loader is closed")
	}
	return s, nil
}

// build makes one plugin ready: read (unless bin holds the module already),
// pin, compile, check, instantiate, configure, warm its pool.
func (l *Loader) build(ctx context.Context, pc config.Plugin, server config.Server, bin []byte) (*plugin, error) {
	pc = pc.WithDefaults() // a config.Config built by hand skipped Parse
	p := &plugin{
		name:    pc.Name,
		path:    pc.Module,
		deny:    pc.OnError != "allow",
		timeout: pc.Timeout.Duration,
		logger:  l.logger.With("plugin", pc.Name),
		shared:  l.shared,
		pos:     pc.Pos,
		gate:    l.gate,
		running: make(chan struct{}, cap(l.gate)),
		breaker: newBreaker(pc.BreakerFailures, pc.BreakerBackoff.Duration, pc.BreakerMaxBackoff.Duration),
	}
	if p.timeout < 0 {
		p.timeout = DefaultTimeout
	}
	p.quotas = quotasOf(pc, server)
	p.logs = newLogLimiter(p.quotas.logRate)
	switch pc.OnError {
	case "", "deny", "allow":
	default:
		return nil, p.errf("on_error is %q, want \"deny\" or \"allow\"", pc.OnError)
	}
	limit := uint64(pc.MemoryLimit)
	pages := limit / pageSize
	if limit%pageSize != 0 && pages >= 1 {
		// Memory grows in whole pages. config.Parse refuses such a limit;
		// a hand-built one is rounded up, never down, and said so.
		pages++
		p.logger.Warn("plugins: memory_limit is not a whole number of 64KiB pages; rounded up",
			"memory_limit", sizeString(limit), "rounded", sizeString(pages*pageSize))
	}
	if pages < 1 || pages > 65536 {
		return nil, p.errf("memory_limit %s is out of range (64KiB to 4GiB)", sizeString(limit))
	}
	size := pc.PoolSize
	if size < 0 {
		size = 2 * runtime.GOMAXPROCS(0)
	}

	path := pc.Module
	if !filepath.IsAbs(path) && l.baseDir != "" {
		path = filepath.Join(l.baseDir, path)
	}
	maxSize := int64(pc.MaxModuleSize)
	if maxSize <= 0 {
		maxSize = DefaultMaxModuleSize
	}
	var err error
	if bin == nil {
		if bin, err = readModule(path, maxSize); err != nil {
			return nil, p.errf("%w", err)
		}
	} else if int64(len(bin)) > maxSize {
		return nil, p.errf("%w", errTooLarge(maxSize))
	}
	if err := checkShape(bin); err != nil {
		return nil, p.errf("%w", err)
	}
	sum := sha256.Sum256(bin)
	if pin := strings.TrimSpace(pc.SHA256); pin != "" && !strings.EqualFold(pin, hex.EncodeToString(sum[:])) {
		return nil, p.errf("sha256 is %x, but the config pins %s", sum, pin)
	}
	if min, ok := minMemoryPages(bin); ok && min > pages {
		return nil, p.errf("declares a minimum memory of %s (%d pages), over its memory_limit of %s (%d pages)",
			sizeString(min*pageSize), min, sizeString(pages*pageSize), pages)
	}
	if pc.Config == nil {
		p.config = []byte("{}")
	} else if p.config, err = json.Marshal(pc.Config); err != nil {
		return nil, p.errf("config cannot be written as JSON: %w", err)
	}

	compileTimeout := pc.CompileTimeout.Duration
	if compileTimeout <= 0 {
		compileTimeout = DefaultCompileTimeout
	}
	p.mod, err = l.acquire(ctx, bin, sum, uint32(pages), uint32(p.quotas.stack), compileTimeout)
	if err != nil {
		return nil, p.errf("%w", err)
	}
	if len(p.mod.problems) > 0 {
		l.release(p.mod)
		return nil, p.errf("%s", strings.Join(p.mod.problems, "; "))
	}
	p.modCfg = p.baseModuleConfig()
	p.m = l.metrics.Plugin(p.name)

	first, err := p.newInstance(ctx)
	if err != nil {
		l.release(p.mod)
		return nil, err
	}
	if err := p.readDeclarations(first); err != nil {
		first.close()
		l.release(p.mod)
		return nil, err
	}
	if body := p.features & (abi.FeatureRequestBody | abi.FeatureResponseBody); body != 0 && p.quotas.bodyBuffer == 0 {
		// The operator decides whether bodies are held in memory, not the
		// module: without max_body_buffer, get_body reads -1.
		p.features &^= body
		p.logger.Warn("plugins: the module asks for buffered bodies, but the plugin has no max_body_buffer: bodies are not buffered for it",
			"features", uint32(body))
	}
	if lim, ok := l.shared.(Limiter); ok {
		lim.Limit(p.name, p.quotas.sharedBytes, p.quotas.sharedKeys)
	}
	p.initMetrics(l.metrics)
	p.pool = newPool(p, size)
	p.pool.add(first)
	// Warm as many instances as can run at once; the pool grows to its
	// size in the background when calls need more.
	for range min(size, runtime.GOMAXPROCS(0)) - 1 {
		in, err := p.newInstance(ctx)
		if err != nil {
			p.pool.close()
			l.release(p.mod)
			return nil, err
		}
		if !p.pool.add(in) {
			in.close()
		}
	}
	pl := p.pool
	p.untrack = p.m.Track(func() (int, int) { return int(p.stats.instances.Load()), len(pl.idle) })
	return p, nil
}

// Chains returns the filter chain of every route that has plugins, keyed by
// route name (config.Route.Name). A route without plugins is absent. The map
// is shared: do not modify it.
func (s *Set) Chains() map[string]filter.Chain { return s.chains }

// Modules maps each plugin of the Set to the sha256 (hex) of the module
// bytes it compiled: the bytes its sha256 pin was checked against.
func (s *Set) Modules() map[string]string {
	out := make(map[string]string, len(s.plugins))
	for _, p := range s.plugins {
		out[p.name] = hex.EncodeToString(p.mod.key.sum[:])
	}
	return out
}

// Stats returns a snapshot of every plugin's counters, in config order.
func (s *Set) Stats() []Stats {
	out := make([]Stats, len(s.plugins))
	for i, p := range s.plugins {
		out[i] = p.snapshot()
	}
	return out
}

// Close closes the Set's instances and releases its compiled modules (the
// Loader keeps those another Set still uses). Hook calls still running are
// cut short and fail under their plugin's policy, so Close a Set only after
// the proxy has stopped routing to its chains. Close is idempotent.
func (s *Set) Close() error {
	s.once.Do(func() {
		for _, p := range s.plugins {
			p.pool.close()
			p.untrack()
			s.loader.release(p.mod)
		}
		s.loader.mu.Lock()
		delete(s.loader.sets, s)
		s.loader.mu.Unlock()
	})
	return nil
}
