package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descHookCalls = prometheus.NewDesc(namespace+"_filter_hook_calls_total",
		"Calls into a filter's hook, by plugin and hook.", []string{"plugin", "hook"}, nil)
	descHookDuration = prometheus.NewDesc(namespace+"_filter_hook_duration_seconds",
		"Time a filter's hook call ran in the guest, by plugin and hook.", []string{"plugin", "hook"}, nil)
	descHookOutcomes = prometheus.NewDesc(namespace+"_filter_hook_outcomes_total",
		"What filter hook calls decided (continue, respond, drop, close) or that they failed (failure), by plugin and hook.",
		[]string{"plugin", "hook", "outcome"}, nil)
	descHookFailures = prometheus.NewDesc(namespace+"_filter_failures_total",
		"Failed filter hook calls, by plugin, hook and cause (trap, timeout, abi_misuse, quota, no_instance).",
		[]string{"plugin", "hook", "cause"}, nil)
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
	FailTrap        FailCause = iota // the guest trapped (or exited)
	FailTimeout                      // the hook deadline stopped it
	FailABIMisuse                    // it broke the ABI
	FailQuota                        // it exceeded a host-side quota
	FailNoInstance                   // no instance was free in time, or none could be created
	FailSharedStore                  // the shared store (Redis) failed or was too slow
	FailTripped                      // the plugin's circuit breaker is open: the guest did not run
	numFailCauses
)

var failLabels = [numFailCauses]string{"trap", "timeout", "abi_misuse", "quota", "no_instance", "shared_store", "tripped"}

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
// "message", ...), the same one every time. Resolve it when the plugin is
// built.
func (p *Plugin) Hook(hook string) *Hook {
	r := p.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{p.name, hook}
	if h := r.hooks[k]; h != nil {
		return h
	}
	h := &Hook{plugin: p.name, hook: hook}
	r.hooks[k] = h
	return h
}

// Hook records the calls of one hook of one plugin. A hook call is the
// hottest thing recorded (a trivial one takes about 2µs), so it costs
// three uncontended atomic adds: the duration's bucket, the sum, and the
// outcome. Calls, the histogram and the outcomes are built from them at
// scrape time.
type Hook struct {
	plugin, hook string
	buckets      [len(hookBucketsNs) + 1]atomic.Uint64 // the last one is +Inf
	sumNs        atomic.Uint64
	outcomes     [numOutcomes]atomic.Uint64
	failures     [numFailCauses]atomic.Uint64
}

// hookBucketsNs are hookBuckets in nanoseconds.
var hookBucketsNs = func() [17]uint64 {
	var b [17]uint64
	for i, s := range hookBuckets {
		b[i] = uint64(s*1e9 + 0.5)
	}
	return b
}()

// Call records one call into the guest, how long it took and what it
// decided (OutcomeFailure is recorded by Failure instead).
func (h *Hook) Call(d time.Duration, o Outcome) {
	ns := uint64(max(d, 0))
	i := 0
	for i < len(hookBucketsNs) && ns > hookBucketsNs[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNs.Add(ns)
	if o != OutcomeFailure {
		h.outcomes[o].Add(1)
	}
}

// Failure records a failed call, or a call that could not be made, and
// its cause.
func (h *Hook) Failure(c FailCause) {
	h.failures[c].Add(1)
	h.outcomes[OutcomeFailure].Add(1)
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

// collect reports the hook's calls, duration histogram, outcomes and
// failures.
func (h *Hook) collect(ch chan<- prometheus.Metric) {
	var count, cum uint64
	var counts [len(hookBucketsNs) + 1]uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		count += counts[i]
	}
	sum := float64(h.sumNs.Load()) / 1e9
	buckets := make(map[float64]uint64, len(hookBuckets))
	for i, le := range hookBuckets {
		cum += counts[i]
		buckets[le] = cum
	}
	ch <- prometheus.MustNewConstMetric(descHookCalls, prometheus.CounterValue, float64(count), h.plugin, h.hook)
	ch <- prometheus.MustNewConstHistogram(descHookDuration, count, sum, buckets, h.plugin, h.hook)
	for o := range h.outcomes {
		if n := h.outcomes[o].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(descHookOutcomes, prometheus.CounterValue, float64(n), h.plugin, h.hook, outcomeLabels[o])
		}
	}
	for c := range h.failures {
		if n := h.failures[c].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(descHookFailures, prometheus.CounterValue, float64(n), h.plugin, h.hook, failLabels[c])
		}
	}
}
