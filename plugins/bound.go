package plugins

import (
	"fmt"
	"runtime"

	"github.com/sluiceproxy/sluice/host/config"
)

// Budget is the most memory one [[plugin]] can make the proxy hold, worked
// out from its config alone, whatever its module does: what each instance
// can hold (its linear memory, its call stacks and the copies a call in
// flight makes) and the plugin's share of the shared store. See ABI.md,
// "Limits", and RATIONALE.md, "The memory bound".
type Budget struct {
	// Plugin is the plugin's name.
	Plugin string
	// Instances is the pool size: at most this many instances live at once.
	Instances int
	// Memory is memory_limit, the linear memory of one instance.
	Memory uint64
	// Stack is the most call stack one instance can hold: one stack per
	// hook export, each at most twice stack_limit (wazero doubles a stack
	// when it grows), and one more stack_limit while a stack is copied.
	Stack uint64
	// PerCall is what the host copies out of a guest during one call:
	// injected messages, a replaced message, a local response, header lists.
	PerCall uint64
	// Shared is the plugin's quota in the shared store, with the map's own
	// overhead per key.
	Shared uint64
	// PerRequest is what each request or WebSocket connection in flight on
	// the plugin's routes can hold besides: its state and, when the
	// operator allows buffering, one request and one response body (each
	// read with up to twice its size allocated). It is not in Total: the
	// number of requests in flight is the proxy's, not the plugin's.
	PerRequest uint64
}

// Total is Instances × (Memory + Stack + PerCall) + Shared.
func (b Budget) Total() uint64 {
	return uint64(b.Instances)*(b.Memory+b.Stack+b.PerCall) + b.Shared
}

// String describes the budget the way `sluice check` prints it.
func (b Budget) String() string {
	return fmt.Sprintf("plugin %q: %d instances x (%s memory + %s stack + %s per call) + %s shared = %s; plus %s per request or connection in flight",
		b.Plugin, b.Instances, sizeString(b.Memory), sizeString(b.Stack), sizeString(b.PerCall),
		sizeString(b.Shared), sizeString(b.Total()), sizeString(b.PerRequest))
}

// wazeroInitialStack is the size of a new call stack in wazero's compiler;
// a stack grows to twice its size plus what the call needs.
const wazeroInitialStack = 10 << 10

// mapOverhead is what a Go map costs per key beyond what the store counts
// (entryOverhead): buckets at their lowest load factor, and the slack of a
// map that grew.
const mapOverhead = 64

// Budgets returns the budget of every [[plugin]] of cfg, in config order.
func Budgets(cfg *config.Config) []Budget {
	out := make([]Budget, len(cfg.Plugins))
	for i, pc := range cfg.Plugins {
		q := quotasOf(pc, cfg.Server)
		limit := uint64(pc.MemoryLimit)
		if limit == 0 {
			limit = DefaultMemoryLimit
		}
		size := pc.PoolSize
		if size <= 0 {
			size = 2 * runtime.GOMAXPROCS(0)
		}
		out[i] = Budget{
			Plugin:     pc.Name,
			Instances:  size,
			Memory:     limit,
			Stack:      uint64(numHooks)*(2*q.stack+wazeroInitialStack) + q.stack,
			PerCall:    q.perCall(),
			Shared:     uint64(q.sharedBytes) + uint64(q.sharedKeys)*mapOverhead,
			PerRequest: uint64(q.stateBytes) + uint64(q.stateKeys)*(entryOverhead+mapOverhead) + 4*uint64(q.bodyBuffer),
		}
	}
	return out
}

// perCall is what one call can make the host copy out of its guest: the
// injected messages, a replaced message (the instance keeps the buffer), a
// local response's body and head, the header lists built for get_header
// (kept by the instance), and the two lines of WASI output it buffers.
func (q quotas) perCall() uint64 {
	return uint64(q.injectBytes) + uint64(q.maxMessage) + uint64(q.localResponse) +
		2*uint64(q.maxHeader) + 2*maxLogLine
}
