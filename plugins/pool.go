package plugins

import (
	"context"
	"errors"
	"sync"
	"time"
)

var (
	errPoolClosed  = errors.New("plugin is closed")
	errPoolTimeout = errors.New("no instance became free before the hook deadline")
)

// pool keeps up to size ready instances of one plugin. See RATIONALE.md.
//
// Instances are created off the request path: the loader warms some up
// front, and a background filler creates the rest on demand and replaces
// every discarded instance. A caller that finds no idle instance asks the
// filler for one more (while the pool is below size) and waits, until its
// deadline, for whichever comes first: a new instance or a returned one.
type pool struct {
	p    *plugin
	size int
	idle chan *instance // capacity size: a put never blocks

	mu      sync.Mutex
	cond    sync.Cond // signalled when live drops
	live    int       // created or being created, not yet closed
	pending int       // instances the filler still has to create
	all     map[*instance]struct{}
	closed  bool

	wake       chan struct{} // capacity 1
	done       chan struct{} // closed by close
	fillerDone chan struct{}
}

func newPool(p *plugin, size int) *pool {
	pl := &pool{
		p:          p,
		size:       size,
		idle:       make(chan *instance, size),
		all:        make(map[*instance]struct{}, size),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		fillerDone: make(chan struct{}),
	}
	pl.cond.L = &pl.mu
	go pl.filler()
	return pl
}

// add puts a freshly created instance into the pool (used for the warm
// instances the loader creates synchronously). It reports false when the pool
// is full or closed, and then the caller closes the instance.
func (pl *pool) add(in *instance) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed || pl.live >= pl.size {
		return false
	}
	pl.live++
	pl.all[in] = struct{}{}
	pl.idle <- in
	pl.p.stats.instances.Add(1)
	return true
}

// getSlow waits at most d for an instance, after the caller found none idle
// (the fast path, a channel receive, is inlined in plugin.acquire).
func (pl *pool) getSlow(d time.Duration) (*instance, error) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil, errPoolClosed
	}
	if pl.live < pl.size {
		pl.live++
		pl.pending++
		pl.signal()
	}
	pl.mu.Unlock()
	pl.p.stats.poolWaits.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case in := <-pl.idle:
		return in, nil
	case <-t.C:
		return nil, errPoolTimeout
	case <-pl.done:
		return nil, errPoolClosed
	}
}

// put returns a healthy instance after a call.
func (pl *pool) put(in *instance) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		pl.destroy(in)
		return
	}
	pl.idle <- in
	pl.mu.Unlock()
}

// discard closes an instance that must not be reused (it trapped, ran out
// of time or misused the ABI) and asks the filler for a replacement.
func (pl *pool) discard(in *instance) {
	pl.p.stats.discarded.Add(1)
	pl.destroy(in)
	pl.mu.Lock()
	if !pl.closed && pl.live < pl.size {
		pl.live++
		pl.pending++
		pl.signal()
	}
	pl.mu.Unlock()
}

// destroy closes an instance and forgets it.
func (pl *pool) destroy(in *instance) {
	in.close()
	pl.p.stats.instances.Add(-1)
	pl.mu.Lock()
	delete(pl.all, in)
	pl.live--
	pl.cond.Broadcast()
	pl.mu.Unlock()
}

// signal wakes the filler; the caller holds pl.mu.
func (pl *pool) signal() {
	select {
	case pl.wake <- struct{}{}:
	default:
	}
}

// filler creates the instances that get and discard asked for.
func (pl *pool) filler() {
	defer close(pl.fillerDone)
	backoff := time.Duration(0)
	for {
		select {
		case <-pl.wake:
		case <-pl.done:
			return
		}
		for {
			pl.mu.Lock()
			if pl.closed || pl.pending == 0 {
				pl.mu.Unlock()
				break
			}
			pl.pending--
			pl.mu.Unlock()

			// A tripped plugin gets no new instances until its breaker lets
			// a probe through: a guest whose start-up is slow and whose
			// hooks fail would otherwise keep a core busy re-creating it.
			if d := pl.p.breaker.wait(); d > 0 {
				select {
				case <-time.After(d):
				case <-pl.done:
					pl.giveBack()
					return
				}
			}
			in, err := pl.p.newInstance(context.Background())
			if err != nil {
				// The module instantiated at load, so this is rare (a guest
				// whose start-up depends on randomness or time). Give the
				// reservation back and slow down rather than spin: wait at
				// least as long as the attempt took, and count it against
				// the breaker.
				pl.p.logger.Error("plugins: cannot create an instance", "error", err)
				pl.p.stats.errors.Add(1)
				pl.p.breaker.failed(pl.p.breaker.open())
				pl.giveBack()
				backoff = min(max(2*backoff, 10*time.Millisecond, time.Duration(pl.p.lastCreate.Load())), pl.p.breaker.ceiling)
				select {
				case <-time.After(backoff):
				case <-pl.done:
					return
				}
				continue
			}
			backoff = 0
			pl.mu.Lock()
			if pl.closed {
				pl.live--
				pl.cond.Broadcast()
				pl.mu.Unlock()
				in.close()
				continue
			}
			pl.all[in] = struct{}{}
			pl.idle <- in
			pl.p.stats.instances.Add(1)
			pl.mu.Unlock()
			if pl.p.breaker.failing() {
				// While its calls fail, a plugin's instances are discarded
				// as fast as they are made: spend at most a fifth of the
				// filler's time creating them.
				select {
				case <-time.After(4 * time.Duration(pl.p.lastCreate.Load())):
				case <-pl.done:
					return
				}
			}
		}
	}
}

// giveBack returns the reservation of an instance the filler did not create.
func (pl *pool) giveBack() {
	pl.mu.Lock()
	pl.live--
	pl.cond.Broadcast()
	pl.mu.Unlock()
}

// close stops the pool: idle instances are closed now, calls in progress
// are cut short (their context fires, so the guest stops at once and the
// call fails under the plugin's policy) and their instances are closed as
// they come back. close returns when every instance is closed.
func (pl *pool) close() {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return
	}
	pl.closed = true
	close(pl.done)
	var idle []*instance
	for {
		select {
		case in := <-pl.idle:
			idle = append(idle, in)
			continue
		default:
		}
		break
	}
	for in := range pl.all {
		in.ctx.fire()
	}
	pl.mu.Unlock()
	for _, in := range idle {
		pl.destroy(in)
	}
	<-pl.fillerDone
	pl.mu.Lock()
	pl.live -= pl.pending // reservations the filler will never fill
	pl.pending = 0
	for pl.live > 0 {
		pl.cond.Wait()
	}
	pl.mu.Unlock()
}
