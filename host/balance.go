package host

import (
	"sync/atomic"
	"time"
)

// balancer picks one available target of a pool, or nil when none is.
type balancer interface {
	pick(targets []*target, now int64) *target
}

func newBalancer(name string) balancer {
	if name == "least_conn" {
		return &leastConn{}
	}
	return &roundRobin{}
}

// roundRobin takes the targets in turn, skipping unavailable ones.
type roundRobin struct{ n atomic.Uint64 }

func (b *roundRobin) pick(ts []*target, now int64) *target {
	start := b.n.Add(1) - 1
	for i := range ts {
		t := ts[(start+uint64(i))%uint64(len(ts))]
		if t.available(now) {
			return t
		}
	}
	return nil
}

// leastConn takes the available target with the fewest requests and
// WebSockets in flight. Ties go round robin, so equally idle targets share
// the load instead of the first one taking it all.
type leastConn struct{ n atomic.Uint64 }

func (b *leastConn) pick(ts []*target, now int64) *target {
	start := b.n.Add(1) - 1
	var best *target
	var bestN int64
	for i := range ts {
		t := ts[(start+uint64(i))%uint64(len(ts))]
		if !t.available(now) {
			continue
		}
		if n := t.active.Load(); best == nil || n < bestN {
			best, bestN = t, n
		}
	}
	return best
}

func nowNano() int64 { return time.Now().UnixNano() }
