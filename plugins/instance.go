package plugins

import (
	"context"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/tetratelabs/wazero/api"
)

// hook indexes the optional hook exports; hook i is abi.Hooks bit 1<<i.
type hook int

const (
	hookRequestHeaders hook = iota
	hookResponseHeaders
	hookUpgrade
	hookMessage
	hookClose
	numHooks
)

// phase is what the current call on an instance is doing; host functions
// check it to decide what the guest may touch.
type phase uint8

const (
	phaseIdle     phase = iota
	phaseInit           // _initialize, sluice_configure, sluice_features, sluice_hooks
	phaseRequest        // on_request_headers
	phaseUpgrade        // on_upgrade
	phaseResponse       // on_response_headers
	phaseMessage        // on_message
	phaseClose          // on_close
)

// callState is everything a host function needs about the hook call in
// progress. It lives inside the instance and is overwritten per call, so a
// call allocates nothing for it.
type callState struct {
	phase phase
	x     *filter.Exchange // HTTP phases
	s     *filter.Session  // WebSocket phases
	m     *filter.Message  // phaseMessage

	// reply is the local response send_response set (HTTP phases); nil
	// until then. replyHeader is the pending local response's header map,
	// which header kind "response" addresses in the request phase.
	reply       *filter.Reply
	replyHeader http.Header

	// payload is the message payload set_message left (in the instance's
	// msgBuf); it is copied into m.Payload only when the call succeeds, so a
	// failing filter under "allow" leaves the message as it found it.
	payload    []byte
	payloadSet bool
	inject     []filter.Message
	// hdrBytes is the wire size of the request (0) and response (1)
	// headers as this call changed them, once hdrKnown (see headerSize).
	hdrBytes [2]int
	hdrKnown [2]bool
	// injectBytes counts the payload bytes of inject, for max_injected_bytes.
	injectBytes int
	closeCode   int
	closeText   string

	// misuse records why a host function trapped the guest, so the failure
	// is reported as ABI misuse rather than as a plain trap.
	misuse error

	// initLog is the last warning or error the guest logged while it was
	// prepared (phaseInit): the reason a refused config gets in the load
	// error.
	initLog string
	// sharedErr records a shared store failure that trapped the guest, so
	// the failure is reported as the store's, not the filter's.
	sharedErr error
	// storeWait is the time this call has spent waiting on a RemoteStore,
	// against the store's per-hook budget.
	storeWait time.Duration
}

// instance is one instantiated guest, owned by its plugin's pool. It serves
// one call at a time: whoever took it from the pool has it exclusively.
type instance struct {
	p     *plugin
	mod   api.Module
	mem   api.Memory
	hooks [numHooks]api.Function
	ctx   *callCtx
	stack [3]uint64

	st callState
	// probe is set while the call is the circuit breaker's half-open probe.
	probe bool

	// scratch backs lists the host builds for the guest (header names and
	// values), reused across calls.
	scratch []byte
	names   []string
	// msgBuf holds what set_message read from the guest until the chain
	// copies it into the message, reused across calls so that replacing a
	// payload allocates nothing once warm.
	msgBuf []byte
	// memSize is the linear memory's size after the last call, as the
	// metrics have it.
	memSize uint32

	stdout, stderr *lineWriter
	// memory owns the instance's linear memory, freed by close.
	memory memoryOwner
}

func (in *instance) close() {
	if in.memSize != 0 {
		// Only an instance the metrics counted (newInstance) has a size.
		in.p.m.MemoryChanged(in.memSize, 0)
		in.memSize = 0
	}
	in.ctx.fire()
	_ = in.mod.Close(context.Background())
	in.memory.free()
	in.stdout.Flush()
	in.stderr.Flush()
}

// callCtx is the context of every call into one instance. It is allocated
// once per instance and re-armed per call, so a hook call needs no
// context.WithTimeout (four allocations) and no timer. Arming it stores the
// call's deadline; the checks that instrument inserts into the guest's loops
// and function entries call tick, which traps the guest once the deadline
// has passed or the context was fired (the pool closing under a running
// call). A fired callCtx stays fired, which matches the policy: its
// instance is discarded.
//
// Host functions find their instance through it (instanceOf) with one type
// assertion and no map lookup or lock.
type callCtx struct {
	in       *instance
	done     chan struct{}
	fired    atomic.Bool
	deadline atomic.Int64 // monotonic ns
	// left keeps what remained of the deadline while pause holds the
	// clock (a call waiting on a remote store).
	left time.Duration
}

// instanceKey is the context key under which a callCtx answers Value with its
// instance, for the case where wazero hands a host function a derived context.
type instanceKey struct{}

func newCallCtx(in *instance) *callCtx {
	return &callCtx{in: in, done: make(chan struct{})}
}

func (c *callCtx) fire() {
	if c.fired.CompareAndSwap(false, true) {
		close(c.done)
	}
}

// arm sets the deadline of one call.
func (c *callCtx) arm(d time.Duration) { c.deadline.Store(monoNow() + int64(d)) }

// pause stops the deadline's clock while the call waits on a remote store,
// so that a slow network does not look like a looping guest (RATIONALE.md,
// "The hook deadline and the network"). It reports false when the call
// must stop already: the deadline passed or the context was fired.
func (c *callCtx) pause() bool {
	if c.expired() {
		return false
	}
	c.left = max(c.remaining(), time.Microsecond)
	c.deadline.Store(math.MaxInt64)
	return true
}

// resume restarts the clock that pause stopped, with what was left.
func (c *callCtx) resume() { c.arm(c.left) }

// disarm ends a call and reports whether the instance is still usable (it
// was not fired meanwhile).
func (c *callCtx) disarm() bool { return !c.fired.Load() }

// expired reports whether the call must stop.
func (c *callCtx) expired() bool { return c.fired.Load() || monoNow() > c.deadline.Load() }

// remaining is the time left before the deadline (negative once passed).
func (c *callCtx) remaining() time.Duration { return time.Duration(c.deadline.Load() - monoNow()) }

// Deadline implements context.Context. The deadline is enforced by tick; it
// is not reported, as nothing below needs it.
func (c *callCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (c *callCtx) Done() <-chan struct{} { return c.done }

// Err implements context.Context.
func (c *callCtx) Err() error {
	if c.fired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context.
func (c *callCtx) Value(key any) any {
	if key == (instanceKey{}) {
		return c.in
	}
	return nil
}

// instanceOf returns the instance whose call is running host code.
func instanceOf(ctx context.Context) *instance {
	if c, ok := ctx.(*callCtx); ok {
		return c.in
	}
	if in, ok := ctx.Value(instanceKey{}).(*instance); ok {
		return in
	}
	panic("plugins: host function called outside a hook call")
}
