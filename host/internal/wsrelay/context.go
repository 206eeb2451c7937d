package wsrelay

import (
	"context"
	"errors"
	"sync"
	"time"
)

// SessionContext is the context that ends a session when shutdown or a reload
// cancels it. The relay and the upstream dial listen to it only through its
// AfterFunc method (afterFunc): a slot in a small slice, where a
// context.WithCancelCause context with context.AfterFunc would add a
// children map, a done channel and a context per registration to every idle
// session. Done makes its channel on demand, for any other user.
type SessionContext struct {
	mu    sync.Mutex
	cause error // set once cancelled
	done  chan struct{}
	fns   []*func()
}

var _ context.Context = (*SessionContext)(nil)

// NewSessionContext returns a session context that is not cancelled.
func NewSessionContext() *SessionContext { return &SessionContext{} }

// Deadline reports none: sessions end by cancellation only.
func (c *SessionContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value carries nothing.
func (c *SessionContext) Value(any) any { return nil }

// Err returns context.Canceled once the session was cancelled.
func (c *SessionContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		return context.Canceled
	}
	return nil
}

// Done returns a channel closed on cancellation.
func (c *SessionContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.cause != nil {
			close(c.done)
		}
	}
	return c.done
}

// AfterFunc arranges for f to run in its own goroutine once the context is
// cancelled (at once if it already is); stop unregisters it and reports
// whether it did so before f started. context.AfterFunc calls this too.
func (c *SessionContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		go f()
		return func() bool { return false }
	}
	fp := &f
	c.fns = append(c.fns, fp)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, g := range c.fns {
			if g == fp {
				c.fns = append(c.fns[:i], c.fns[i+1:]...)
				if len(c.fns) == 0 {
					c.fns = nil
				}
				return true
			}
		}
		return false
	}
}

// Cancel cancels the context, once. cause says why (nil means
// context.Canceled): ErrReloaded makes the relay tell both sides that a
// reload closed the session, anything else that the proxy is shutting
// down.
func (c *SessionContext) Cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	c.mu.Lock()
	if c.cause != nil {
		c.mu.Unlock()
		return
	}
	c.cause = cause
	fns := c.fns
	c.fns = nil
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
	for _, f := range fns {
		go (*f)()
	}
}

// Cause returns why the context was cancelled, or nil while it is not.
func (c *SessionContext) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// ErrReloaded is the cause of a session closed because a reload could no
// longer serve it as it was.
var ErrReloaded = errors.New("wsrelay: closed by a reload")

// shutdownReason is the close reason sent to both sides when ctx ends the
// session.
func shutdownReason(ctx context.Context) string {
	if sc, ok := ctx.(*SessionContext); ok && errors.Is(sc.Cause(), ErrReloaded) {
		return "proxy reloaded"
	}
	return "proxy shutting down"
}

// afterFunc is context.AfterFunc, without the context it allocates when
// ctx can schedule the call itself (a SessionContext).
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}
