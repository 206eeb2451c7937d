package plugins

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/metrics"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// initTimeout bounds the calls that prepare an instance (_initialize and
// sluice_configure): a Go runtime's start-up takes milliseconds, far more
// than a hook's budget, but a guest that never returns must not hang a load.
const initTimeout = 5 * time.Second

// hookExports maps each hook to its export name.
var hookExports = [numHooks]string{
	hookRequestHeaders:  abi.FuncOnRequestHeaders,
	hookResponseHeaders: abi.FuncOnResponseHeaders,
	hookUpgrade:         abi.FuncOnUpgrade,
	hookMessage:         abi.FuncOnMessage,
	hookClose:           abi.FuncOnClose,
}

// Stats is a snapshot of one plugin's counters, for metrics.
type Stats struct {
	// Plugin is the plugin's name.
	Plugin string
	// Calls counts hook calls made into the guest.
	Calls uint64
	// Errors counts failed hook calls, whatever the cause (traps, timeouts,
	// misuse, no free instance), plus failures to create an instance.
	Errors uint64
	// Traps counts calls that ended in a guest trap (including an
	// out-of-range pointer and a WASI proc_exit).
	Traps uint64
	// Timeouts counts calls stopped by the hook deadline.
	Timeouts uint64
	// Misuses counts calls where the guest broke the ABI (an unknown action,
	// respond without send_response, a bad argument).
	Misuses uint64
	// SharedErrors counts calls that failed because the shared store did
	// (Redis down or slower than shared.call_timeout, or the hook's
	// shared.hook_budget spent).
	SharedErrors uint64
	// PoolWaits counts calls that found no idle instance and had to wait;
	// PoolTimeouts those whose deadline passed while waiting, for an
	// instance or for their turn to run (see RATIONALE.md, "Deadlines under
	// a flood").
	PoolWaits    uint64
	PoolTimeouts uint64
	// Discarded counts instances closed after a failure.
	Discarded uint64
	// Trips counts how often the circuit breaker opened; Tripped counts the
	// calls it failed without running guest code (also counted in Errors).
	Trips   uint64
	Tripped uint64
	// Instances is the number of live instances now; Created counts the
	// instances created since the load (the warm ones included).
	Instances int64
	Created   uint64
	// LogDropped counts guest log lines dropped over log_rate.
	LogDropped uint64
}

type counters struct {
	calls, errors, traps, timeouts, misuses atomic.Uint64
	sharedErrors                            atomic.Uint64
	poolWaits, poolTimeouts, discarded      atomic.Uint64
	created                                 atomic.Uint64
	instances                               atomic.Int64
}

// plugin is one [[plugin]] of a Set: a compiled module, its settings and its
// pool of instances.
type plugin struct {
	name    string
	path    string // as written in the config, for messages
	mod     *module
	config  []byte // JSON
	deny    bool
	timeout time.Duration
	logger  *slog.Logger
	shared  SharedStore
	pos     config.Position // where the config file declares it
	quotas  quotas
	logs    logLimiter

	// Filled from the first instance at load.
	features abi.Features
	hooks    abi.Hooks // the hooks the chain calls: declared ∩ exported

	modCfg wazero.ModuleConfig
	pool   *pool
	stats  counters

	// flog rate-limits failure logs per cause (metrics.go): a broken
	// filter on a busy route must not flood the log.
	flog failLog

	// m and hm record into the metrics; debug logs every hook call.
	m       *metrics.Plugin
	hm      [numHooks]*metrics.Hook
	debug   bool
	untrack func()

	// breaker stops calling a guest that keeps failing (breaker.go).
	breaker *breaker
	// gate is the Loader's guestGate: calls of a plugin that timed out in
	// the last suspectFor, and every instance creation, run guest code only
	// with one of its tokens. lastTimeout (monotonic ns, 0: never) marks
	// the plugin suspect.
	gate        chan struct{}
	lastTimeout atomic.Int64
	// running has GOMAXPROCS-1 tokens (at least one): no more of this
	// plugin's calls run guest code at once, so that one plugin whose
	// guest loops cannot hold every processor while its deadlines wait to
	// fire.
	running chan struct{}
	// lastCreate is how long the last instance creation ran guest code (ns).
	lastCreate atomic.Int64
}

// errf formats a load error that names the plugin and its module file.
func (p *plugin) errf(format string, args ...any) error {
	return fmt.Errorf("plugins: plugin %q (%s): "+format, append([]any{p.name, p.path}, args...)...)
}

// configErr is the load error of a filter that refused its config: msg,
// then the reason the filter logged, placed at the line of the config file
// that the reason names (a quoted key of [plugin.config]) or at the config
// table itself.
func (p *plugin) configErr(msg, reason string) error {
	if reason != "" {
		msg += ": " + reason
	}
	line := p.pos.ConfigLine
	if line == 0 {
		line = p.pos.Line
	}
	for rest := reason; ; {
		i := strings.IndexByte(rest, '"')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '"')
		if j < 0 {
			break
		}
		if l, ok := p.pos.ConfigKeys[rest[i+1:i+1+j]]; ok {
			line = l
			break
		}
		rest = rest[i+1+j+1:]
	}
	if p.pos.File == "" || line == 0 {
		return p.errf("%s", msg)
	}
	return p.errf("%s:%d: %s", p.pos.File, line, msg)
}

func (p *plugin) snapshot() Stats {
	return Stats{
		Plugin:       p.name,
		Calls:        p.stats.calls.Load(),
		Errors:       p.stats.errors.Load(),
		Traps:        p.stats.traps.Load(),
		Timeouts:     p.stats.timeouts.Load(),
		SharedErrors: p.stats.sharedErrors.Load(),
		Misuses:      p.stats.misuses.Load(),
		PoolWaits:    p.stats.poolWaits.Load(),
		PoolTimeouts: p.stats.poolTimeouts.Load(),
		Discarded:    p.stats.discarded.Load(),
		Trips:        p.breaker.trips.Load(),
		Tripped:      p.breaker.refusals.Load(),
		Instances:    p.stats.instances.Load(),
		Created:      p.stats.created.Load(),
		LogDropped:   p.logs.dropped.Load(),
	}
}

func (p *plugin) baseModuleConfig() wazero.ModuleConfig {
	// No FS, no args, no env: WASI gives the guest clocks, randomness and
	// stdout/stderr only. Sleeping is left at wazero's no-op default so a
	// guest cannot block a hook in poll_oneoff. The empty name lets many
	// instances of one module live in one runtime.
	return wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
}

// newInstance instantiates the module and prepares the instance: it runs
// _initialize (never _start), checks the ABI version and runs
// sluice_configure. The returned instance is idle.
func (p *plugin) newInstance(ctx context.Context) (*instance, error) {
	in, _, err := p.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.configure(in); err != nil {
		in.close()
		return nil, err
	}
	in.memSize = in.mem.Size()
	p.m.InstanceCreated(in.memSize)
	return in, nil
}

// instantiate instantiates the module, runs _initialize and checks the ABI
// version, which it returns (also when it is not the host's).
func (p *plugin) instantiate(ctx context.Context) (*instance, int32, error) {
	in := &instance{
		p:      p,
		stdout: newLineWriter(p.logger, &p.logs, "stdout", slog.LevelInfo),
		stderr: newLineWriter(p.logger, &p.logs, "stderr", slog.LevelWarn),
	}
	in.ctx = newCallCtx(in)
	// Creating an instance runs guest code (start-up, _initialize,
	// configure) for up to initTimeout: it needs a gate token.
	select {
	case p.gate <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, p.errf("instantiate: %w", ctx.Err())
	}
	defer func() { <-p.gate }()
	p.stats.created.Add(1)
	start := time.Now()
	defer func() { p.lastCreate.Store(int64(time.Since(start))) }()
	ictx, cancel := context.WithTimeout(experimental.WithMemoryAllocator(ctx, &in.memory), initTimeout)
	defer cancel()
	mod, err := p.mod.rt.InstantiateModule(ictx, p.mod.compiled,
		p.modCfg.WithStdout(in.stdout).WithStderr(in.stderr))
	if err != nil {
		in.memory.free()
		return nil, 0, p.errf("instantiate: %w", err)
	}
	in.mod = mod
	in.mem = mod.ExportedMemory(abi.MemoryExport)
	for h, name := range hookExports {
		in.hooks[h] = mod.ExportedFunction(name)
	}
	ok := false
	defer func() {
		if !ok {
			in.close()
		}
	}()
	in.st = callState{phase: phaseInit}
	defer func() { in.st = callState{} }()

	if f := mod.ExportedFunction("_initialize"); f != nil {
		if _, err := in.initCall(f); err != nil {
			return nil, 0, p.errf("_initialize: %w", err)
		}
	}
	v, err := in.initCall(mod.ExportedFunction(abi.FuncABIVersion))
	if err != nil {
		return nil, 0, p.errf("%s: %w", abi.FuncABIVersion, err)
	}
	if int32(v) != abi.Version {
		return nil, int32(v), p.errf("built for ABI v%d, this host speaks v%d", int32(v), abi.Version)
	}
	ok = true
	return in, int32(v), nil
}

// configure runs sluice_configure on an instantiated instance.
func (p *plugin) configure(in *instance) error {
	f := in.mod.ExportedFunction(abi.FuncConfigure)
	if f == nil {
		return nil
	}
	in.st = callState{phase: phaseInit}
	defer func() { in.st = callState{} }()
	in.stack[0] = uint64(len(p.config))
	rc, err := in.initCall(f)
	if err != nil {
		return p.errf("%s: %w", abi.FuncConfigure, err)
	}
	if rc != 0 {
		return p.configErr(fmt.Sprintf("%s refused its config (returned %d)", abi.FuncConfigure, int32(rc)), in.st.initLog)
	}
	return nil
}

// initCall makes one preparation call with its arguments already on the
// stack and returns its first result (0 when it has none).
func (in *instance) initCall(f api.Function) (uint32, error) {
	in.ctx.arm(initTimeout)
	err := f.CallWithStack(in.ctx, in.stack[:])
	if !in.ctx.disarm() || isDeadline(err) {
		return 0, errors.New("did not return within " + initTimeout.String())
	}
	if err != nil {
		return 0, err
	}
	if len(f.Definition().ResultTypes()) == 0 {
		return 0, nil
	}
	return uint32(in.stack[0]), nil
}

// readDeclarations reads sluice_features and sluice_hooks from a configured
// instance and settles which hooks the chain will call.
func (p *plugin) readDeclarations(in *instance) error {
	in.st = callState{phase: phaseInit}
	defer func() { in.st = callState{} }()
	if f := in.mod.ExportedFunction(abi.FuncFeatures); f != nil {
		v, err := in.initCall(f)
		if err != nil {
			return p.errf("%s: %w", abi.FuncFeatures, err)
		}
		p.features = abi.Features(v)
	}
	var exported abi.Hooks
	for h := range numHooks {
		if in.hooks[h] != nil {
			exported |= 1 << h
		}
	}
	p.hooks = exported
	if f := in.mod.ExportedFunction(abi.FuncHooks); f != nil {
		v, err := in.initCall(f)
		if err != nil {
			return p.errf("%s: %w", abi.FuncHooks, err)
		}
		p.hooks = exported & abi.Hooks(v)
	}
	return nil
}

// failure kinds, for counting and for the log.
type failKind uint8

const (
	failTrap failKind = iota
	failTimeout
	failMisuse
	failNoInstance
	failShared
	failTripped
)

func (k failKind) String() string {
	switch k {
	case failTimeout:
		return "timeout"
	case failMisuse:
		return "ABI misuse"
	case failNoInstance:
		return "no instance"
	case failShared:
		return "shared store"
	case failTripped:
		return "tripped"
	}
	return "trap"
}

// callError is a failed hook call.
type callError struct {
	kind failKind
	err  error
}

func (e *callError) Error() string { return e.kind.String() + ": " + e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

var errTripped = errors.New("the plugin failed repeatedly and is tripped (circuit breaker open)")

// acquire takes an instance from the pool for one hook call and arms its
// deadline, unless the breaker is open. The time spent waiting for a free
// instance counts against the deadline: the hook's budget is one budget.
// With a remote shared store, instances are busy while their calls wait on
// the network, so waiting for one is waiting on the network too: the wait
// may also use the store's per-hook budget (shared.hook_budget) before it
// eats into the guest's time.
func (p *plugin) acquire() (*instance, *callError) { return p.acquireFor(p.timeout) }

// messageBudgetUnit is how much of a message one timeout pays for: a
// message hook gets the plugin's timeout once per started 64 KiB of its
// message, since what a filter does with a message grows with its size.
// With the default max_message_size of 1 MiB and timeout of 10ms, a
// message hook call is stopped after 160ms at the most.
const messageBudgetUnit = 64 << 10

// messageBudget is the deadline of a message hook call on n bytes.
func (p *plugin) messageBudget(n int) time.Duration {
	return p.timeout * time.Duration(1+max(n-1, 0)/messageBudgetUnit)
}

// acquireFor is acquire with a deadline of budget.
func (p *plugin) acquireFor(budget time.Duration) (*instance, *callError) {
	ok, probe := p.breaker.allow()
	if !ok {
		return nil, &callError{kind: failTripped, err: errTripped}
	}
	select {
	case in := <-p.pool.idle:
		in.probe = probe
		in.ctx.arm(budget)
		return in, nil
	default:
	}
	start := time.Now()
	var grace time.Duration
	if r, ok := p.shared.(RemoteStore); ok {
		_, grace = r.Deadlines()
	}
	in, err := p.pool.getSlow(budget + grace)
	if err != nil {
		p.breaker.abandon(probe)
		if errors.Is(err, errPoolTimeout) {
			p.stats.poolTimeouts.Add(1)
		}
		return nil, &callError{kind: failNoInstance, err: err}
	}
	in.probe = probe
	in.ctx.arm(max(budget-max(time.Since(start)-grace, 0), time.Microsecond))
	return in, nil
}

// suspectFor is how long after a timeout a plugin's calls need a gate
// token: a guest that looped once may loop again, and each loop holds a
// processor until its deadline fires.
const suspectFor = 10 * time.Second

// suspect reports whether the plugin timed out within suspectFor.
func (p *plugin) suspect() bool {
	last := p.lastTimeout.Load()
	return last != 0 && monoNow()-last < int64(suspectFor)
}

// wait takes a token of sem, waiting at most until the call's deadline.
func (p *plugin) wait(sem chan struct{}, in *instance) bool {
	d := in.ctx.remaining()
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-in.ctx.done:
		return false
	}
}

// waitedOut is the failure of a call whose deadline passed before it could
// run guest code. Like finding no free instance, it says nothing about the
// guest: it does not count against the breaker and keeps the instance.
func (p *plugin) waitedOut() *callError {
	p.stats.poolTimeouts.Add(1)
	return &callError{kind: failNoInstance, err: fmt.Errorf("the hook deadline of %s passed before the call's turn to run", p.timeout)}
}

// invoke calls hook h on an acquired instance whose call state and stack
// arguments are set, and returns the hook's result.
func (p *plugin) invoke(in *instance, h hook) (action uint32, ce *callError) {
	p.stats.calls.Add(1)
	defer p.record(in, h, monoNow(), &action, &ce)
	select {
	case p.running <- struct{}{}:
	default:
		if !p.wait(p.running, in) {
			return 0, p.waitedOut()
		}
	}
	var err error
	if p.suspect() {
		if !p.wait(p.gate, in) {
			<-p.running
			return 0, p.waitedOut()
		}
		err = in.hooks[h].CallWithStack(in.ctx, in.stack[:])
		<-p.gate
	} else {
		err = in.hooks[h].CallWithStack(in.ctx, in.stack[:])
	}
	<-p.running
	alive := in.ctx.disarm()
	switch {
	case err == nil:
		// A call that returned stands, even late; if the pool closed
		// meanwhile, release discards the instance.
		return uint32(in.stack[0]), nil
	case in.st.misuse != nil:
		return 0, &callError{kind: failMisuse, err: in.st.misuse}
	case !alive || isDeadline(err):
		return 0, &callError{kind: failTimeout, err: fmt.Errorf("exceeded the hook deadline of %s", p.timeout)}
	case in.st.sharedErr != nil:
		return 0, &callError{kind: failShared, err: in.st.sharedErr}
	case in.stackOverflow():
		return 0, &callError{kind: failTrap, err: fmt.Errorf("stack overflow: the call stack passed the plugin's stack_limit of %s", sizeString(p.quotas.stack))}
	}
	return 0, &callError{kind: failTrap, err: err}
}

// stackOverflow reports whether the stack guard's counter is over the
// plugin's stack_limit: the trap that ended the call was the guard's.
func (in *instance) stackOverflow() bool {
	g := in.mod.ExportedGlobal(stackGlobalExport)
	return g != nil && uint32(g.Get()) > in.p.mod.stackCheck
}

// misuse is the failure of a hook that returned something the ABI does
// not allow.
func misuse(format string, args ...any) *callError {
	return &callError{kind: failMisuse, err: fmt.Errorf(format, args...)}
}

func isDeadline(err error) bool {
	var ee *sys.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == sys.ExitCodeDeadlineExceeded
}

// release ends a call: the instance goes back to the pool, or is discarded
// when the call failed in any way (see RATIONALE.md).
func (p *plugin) release(in *instance, ce *callError) {
	in.st = callState{}
	probe := in.probe
	in.probe = false
	switch {
	case ce == nil:
		p.breaker.succeeded(probe)
		if probe {
			p.logger.Info("plugins: plugin recovered: its probe call succeeded, the circuit breaker is closed")
		}
	case ce.kind == failNoInstance:
		// The guest did not run (its turn did not come before the
		// deadline): nothing was learnt about it, and the instance is fine.
		p.breaker.abandon(probe)
	default:
		if ce.kind == failTimeout {
			p.lastTimeout.Store(monoNow())
		}
		if p.breaker.failed(probe) {
			p.logger.Warn("plugins: plugin tripped: its on_error policy applies without running it until a probe call succeeds",
				"failures_in_a_row", p.breaker.threshold, "backoff", p.breaker.first.String(), "last_error", ce.Error())
		}
	}
	if (ce == nil || ce.kind == failNoInstance) && !in.ctx.fired.Load() && !in.mod.IsClosed() {
		p.pool.put(in)
		return
	}
	p.pool.discard(in)
}

// fail records a failed call of hook h for the request x or the session
// s, and reports whether the policy denies.
func (p *plugin) fail(h hook, ce *callError, x *filter.Exchange, s *filter.Session) bool {
	p.stats.errors.Add(1)
	if hm := p.hm[h]; hm != nil {
		hm.Failure(failCause(ce))
	}
	switch ce.kind {
	case failTrap:
		p.stats.traps.Add(1)
	case failTimeout:
		p.stats.timeouts.Add(1)
	case failMisuse:
		p.stats.misuses.Add(1)
	case failShared:
		p.stats.sharedErrors.Add(1)
	case failTripped:
		// Logged once when the breaker opened.
		return p.deny
	}
	p.logFailure(h, ce, x, s)
	return p.deny
}
