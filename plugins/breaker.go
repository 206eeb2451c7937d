package plugins

import (
	"sync/atomic"
	"time"
)

// Defaults of the circuit breaker (breaker_failures, breaker_backoff,
// breaker_max_backoff), for configs built by hand.
const (
	DefaultBreakerFailures   = 5
	DefaultBreakerBackoff    = time.Second
	DefaultBreakerMaxBackoff = time.Minute
)

// breaker stops a failing plugin from costing CPU. See RATIONALE.md.
//
// Closed, it lets every call through and counts failures in a row (traps,
// timeouts, ABI misuse, failures to create an instance). At the threshold
// it opens for a backoff: calls fail at once under the plugin's policy,
// without running guest code, and the pool creates no instances. When the
// backoff has passed it is half-open: one call at a time probes the guest.
// A probe that succeeds closes it; one that fails opens it again for twice
// the backoff, up to a maximum.
//
// The closed path costs two atomic loads per call.
type breaker struct {
	threshold       int32
	first, ceiling  time.Duration
	failures        atomic.Int32
	openUntil       atomic.Int64 // monotonic ns; 0 while closed
	backoff         atomic.Int64 // the current backoff, ns
	probing         atomic.Bool  // a half-open probe is running
	trips, refusals atomic.Uint64
}

func newBreaker(threshold int, first, ceiling time.Duration) *breaker {
	if threshold <= 0 {
		threshold = DefaultBreakerFailures
	}
	if first <= 0 {
		first = DefaultBreakerBackoff
	}
	if ceiling < first {
		ceiling = max(first, DefaultBreakerMaxBackoff)
	}
	return &breaker{threshold: int32(threshold), first: first, ceiling: ceiling}
}

// allow reports whether a call may run guest code, and whether that call is
// the half-open probe (whose outcome the caller must report with probe set).
func (b *breaker) allow() (ok, probe bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if monoNow() >= until && b.probing.CompareAndSwap(false, true) {
		return true, true
	}
	b.refusals.Add(1)
	return false, false
}

// wait returns how long the breaker stays open from now (0 when calls may
// run), so that the pool does not create instances for a tripped plugin.
func (b *breaker) wait() time.Duration {
	until := b.openUntil.Load()
	if until == 0 {
		return 0
	}
	return max(time.Duration(until-monoNow()), 0)
}

// open reports whether the breaker is not closed (open or half-open).
func (b *breaker) open() bool { return b.openUntil.Load() != 0 }

// failing reports whether the last call failed or the breaker is not closed.
func (b *breaker) failing() bool { return b.failures.Load() != 0 || b.open() }

// succeeded records a call that ran and returned normally.
func (b *breaker) succeeded(probe bool) {
	if probe {
		b.backoff.Store(0)
		b.openUntil.Store(0)
		b.failures.Store(0)
		b.probing.Store(false)
		return
	}
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
}

// failed records a failure of guest code and reports whether it tripped
// the breaker (opened it from closed).
func (b *breaker) failed(probe bool) (tripped bool) {
	if probe {
		next := min(2*time.Duration(b.backoff.Load()), b.ceiling)
		b.backoff.Store(int64(next))
		b.openUntil.Store(monoNow() + int64(next))
		b.probing.Store(false)
		return false
	}
	if b.failures.Add(1) < b.threshold || b.openUntil.Load() != 0 {
		return false
	}
	b.backoff.Store(int64(b.first))
	if !b.openUntil.CompareAndSwap(0, monoNow()+int64(b.first)) {
		return false
	}
	b.trips.Add(1)
	return true
}

// abandon gives the probe back when it could not run guest code (no
// instance was free in time): nothing was learnt about the guest.
func (b *breaker) abandon(probe bool) {
	if probe {
		b.probing.Store(false)
	}
}
