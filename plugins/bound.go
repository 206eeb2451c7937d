package plugins

import (
	"fmt"
	"runtime"

	"github.com/sluiceproxy/sluice/host/config"
)

// Budget is the most memory one [[plugin]] can make the proxy hold, worked
// out from its config alone, whatever its module does. It is the sum of
// what each instance can hold (its linear memory and its call stack) and
// of the host-side quotas (see ABI.md, "Limits").
type Budget struct {
	// Plugin is the plugin's name.
	Plugin string
	// Instances is the pool size: at most this many instances live at once.
	Instances int
	// Memory is memory_limit, the linear memory of one instance.
	Memory uint64
	// Stack is the most call stack one instance can hold.
	Stack uint64
	// Host is what the host keeps for the plugin beyond its instances:
	// the shared store and the copies the calls in flight can make.
	Host uint64
}

// Total is Instances × (Memory + Stack) + Host.
func (b Budget) Total() uint64 {
	return uint64(b.Instances)*(b.Memory+b.Stack) + b.Host
}

// String describes the budget the way `sluice check` prints it.
func (b Budget) String() string {
	return fmt.Sprintf("plugin %q: %d instances x (%s memory + %s stack) + %s host = %s",
		b.Plugin, b.Instances, sizeString(b.Memory), sizeString(b.Stack), sizeString(b.Host), sizeString(b.Total()))
}

// wazeroStackCeiling is how far wazero's compiler lets one call stack grow
// before it traps: the stack doubles from 10KiB while it is under 50MB, so
// its last size is 80MiB, and while it is copied the old one (40MiB) is
// alive too.
const wazeroStackCeiling = 120 << 20

// Budgets returns the budget of every [[plugin]] of cfg, in config order.
func Budgets(cfg *config.Config) []Budget {
	out := make([]Budget, len(cfg.Plugins))
	for i, pc := range cfg.Plugins {
		limit := uint64(pc.MemoryLimit)
		if limit == 0 {
			limit = DefaultMemoryLimit
		}
		size := pc.PoolSize
		if size <= 0 {
			size = 2 * runtime.GOMAXPROCS(0)
		}
		out[i] = Budget{
			Plugin:    pc.Name,
			Instances: size,
			Memory:    limit,
			Stack:     wazeroStackCeiling,
		}
	}
	return out
}
