package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome is what a filter hook call decided.
type Outcome uint8

// The outcomes of a hook call.
const (
	OutcomeContinue Outcome = iota // continue, or pass a message on
	OutcomeRespond                 // answered locally
	OutcomeDrop                    // dropped a message
	OutcomeClose                   // closed the WebSocket
	OutcomeFailure                 // failed (see FailCause)
	numOutcomes
)

var outcomeLabels = [numOutcomes]string{"continue", "respond", "drop", "close", "failure"}

// FailCause is why a hook call failed.
type FailCause uint8

// The causes of a failed hook call.
const (
	FailTrap       FailCause = iota // the guest trapped (or exited)
	FailTimeout                     // the hook deadline stopped it
	FailABIMisuse                   // it broke the ABI
	FailQuota                       // it exceeded a host-side quota
	FailNoInstance                  // no instance was free in time, or none could be created
	numFailCauses
)

var failLabels = [numFailCauses]string{"trap", "timeout", "abi_misuse", "quota", "no_instance"}

// String returns the cause's label value, which logs use too.
func (c FailCause) String() string { return failLabels[c] }

// Plugin records the work of one plugin, by name: the handle outlives the
// Sets that load it, so counters carry on across reloads.
type Plugin struct {
	name    string
	reg     *Registry
	created prometheus.Counter
	memory  prometheus.Gauge
}

// Plugin returns the handle of the plugin named name.
func (r *Registry) Plugin(name string) *Plugin {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.plugins[name]; p != nil {
		return p
	}
	p := &Plugin{
		name:    name,
		reg:     r,
		created: r.instCreated.WithLabelValues(name),
		memory:  r.guestMemory.WithLabelValues(name),
	}
	r.plugins[name] = p
	return p
}

// InstanceCreated records a new instance with mem bytes of linear memory.
func (p *Plugin) InstanceCreated(mem uint32) {
	p.created.Inc()
	p.memory.Add(float64(mem))
}

// MemoryChanged records that an instance's linear memory went from old to
// now bytes (grown by a call, or 0 when the instance is closed).
func (p *Plugin) MemoryChanged(old, now uint32) {
	p.memory.Add(float64(now) - float64(old))
}

// Hook returns the handle of one hook of the plugin ("request_headers",
// "message", ...). Resolve it when the plugin is built.
func (p *Plugin) Hook(hook string) *Hook {
	r := p.reg
	h := &Hook{plugin: p.name, hook: hook, reg: r,
		calls:    r.hookCalls.WithLabelValues(p.name, hook),
		duration: r.hookDuration.WithLabelValues(p.name, hook),
	}
	return h
}

// Hook records the calls of one hook of one plugin.
type Hook struct {
	plugin, hook string
	reg          *Registry
	calls        prometheus.Counter
	duration     prometheus.Observer
	// Created on first use: a hook sees only some outcomes and causes.
	outcomes [numOutcomes]atomic.Pointer[prometheus.Counter]
	failures [numFailCauses]atomic.Pointer[prometheus.Counter]
}

// Call records one call into the guest and how long it took.
func (h *Hook) Call(d time.Duration) {
	h.calls.Inc()
	h.duration.Observe(d.Seconds())
}

// Outcome records what a call (or a failed attempt to make one) decided.
func (h *Hook) Outcome(o Outcome) {
	lazyInc(&h.outcomes[o], func() prometheus.Counter {
		return h.reg.hookOutcomes.WithLabelValues(h.plugin, h.hook, outcomeLabels[o])
	})
}

// Failure records a failed call and its cause (its outcome too).
func (h *Hook) Failure(c FailCause) {
	lazyInc(&h.failures[c], func() prometheus.Counter {
		return h.reg.hookFailures.WithLabelValues(h.plugin, h.hook, failLabels[c])
	})
	h.Outcome(OutcomeFailure)
}

func lazyInc(slot *atomic.Pointer[prometheus.Counter], make func() prometheus.Counter) {
	c := slot.Load()
	if c == nil {
		v := make()
		slot.CompareAndSwap(nil, &v)
		c = slot.Load()
	}
	(*c).Inc()
}

// pluginSource reports a live pool's instances at scrape time.
type pluginSource struct {
	plugin string
	read   func() (live, idle int)
}

// Track registers a pool of the plugin whose instance counts read reports
// at scrape time; call the returned function when the pool is closed.
func (p *Plugin) Track(read func() (live, idle int)) (untrack func()) {
	s := &pluginSource{plugin: p.name, read: read}
	r := p.reg
	r.mu.Lock()
	r.pluginSources[s] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.pluginSources, s)
		r.mu.Unlock()
	}
}
