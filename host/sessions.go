package host

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/wsrelay"
)

// wsEntry is one tracked WebSocket session.
type wsEntry struct {
	route    string
	upstream string
	target   string // the target URL it was dialled on
	cancel   context.CancelCauseFunc
	chain    *liveChain
	timer    *time.Timer // the close a reload scheduled; under wsMu
}

// liveChain is the chain a WebSocket session sees: for each call, the chain
// of its route in the generation current at that moment, held (counted in
// flight) for the length of the call so that a reload cannot release the
// filters under a running hook.
//
// The relay asks for Hooks once at upgrade time to choose between raw and
// message mode; that first answer comes from the generation the upgrade
// ran on (start), which the session holds until then, so the mode matches
// the OnUpgrade hook that admitted it and reconcileSessions knows the mode
// without racing the relay.
type liveChain struct {
	p          *Proxy
	route      string
	startHooks filter.HookSet
	start      atomic.Pointer[generation]
	// pinned is the last generation that had the route, held while a
	// session whose route a reload removed runs out its grace period, so
	// its messages still pass the filters they were admitted under.
	pinned atomic.Pointer[generation]
}

var _ filter.Chain = (*liveChain)(nil)

// raw reports whether the relay copies the session's bytes without frames.
func (c *liveChain) raw() bool { return !c.startHooks.Has(filter.HookMessage) }

// releaseStart lets go of the upgrade's generation, once.
func (c *liveChain) releaseStart() {
	if g := c.start.Swap(nil); g != nil {
		c.p.release(g)
	}
}

// chainIn returns the route's chain in g, or in the pinned generation when
// g no longer has the route, or nil.
func (c *liveChain) chainIn(g *generation) filter.Chain {
	if r := g.routes[c.route]; r != nil {
		return r.chain
	}
	if pg := c.pinned.Load(); pg != nil {
		if r := pg.routes[c.route]; r != nil {
			return r.chain
		}
	}
	return nil
}

// Hooks returns the hooks of the route's current chain, or, the first time,
// those of the chain the upgrade ran on.
func (c *liveChain) Hooks() filter.HookSet {
	if c.start.Load() != nil {
		c.releaseStart()
		return c.startHooks
	}
	if ch := c.chainIn(c.p.gen.Load()); ch != nil {
		return ch.Hooks()
	}
	return 0
}

// OnMessage runs the message hooks of the route's current chain. When the
// current chain has none (a reload removed them), the message passes.
func (c *liveChain) OnMessage(s *filter.Session, m *filter.Message) filter.MessageVerdict {
	g := c.p.acquire()
	defer c.p.release(g)
	if ch := c.chainIn(g); ch != nil && ch.Hooks().Has(filter.HookMessage) {
		return ch.OnMessage(s, m)
	}
	return filter.MessageVerdict{}
}

// OnClose runs the close hooks of the route's current chain.
func (c *liveChain) OnClose(s *filter.Session) {
	g := c.p.acquire()
	defer c.p.release(g)
	if ch := c.chainIn(g); ch != nil && ch.Hooks().Has(filter.HookClose) {
		ch.OnClose(s)
	}
}

// The HTTP hooks have run before the relay starts; the relay never calls
// them.
func (c *liveChain) OnRequestHeaders(*filter.Exchange) *filter.Reply  { return nil }
func (c *liveChain) OnUpgrade(*filter.Exchange) *filter.Reply         { return nil }
func (c *liveChain) OnResponseHeaders(*filter.Exchange) *filter.Reply { return nil }

// trackSession registers a WebSocket session so that shutdown, or a reload
// that removes its route, can close it. It fails once shutdown has begun. g
// is the generation the upgrade ran on; when a reload swapped it out
// already, the session is checked against the current one at once, as
// reconcileSessions would have.
func (p *Proxy) trackSession(rt *route, t *target, lc *liveChain, g *generation) (context.Context, *wsEntry, bool) {
	p.wsMu.Lock()
	defer p.wsMu.Unlock()
	if p.wsClosing {
		return nil, nil, false
	}
	ctx := wsrelay.NewSessionContext()
	e := &wsEntry{route: rt.name, upstream: rt.pool.name, target: t.url.String(), cancel: ctx.Cancel, chain: lc}
	p.wsSessions[e] = struct{}{}
	p.wsWG.Add(1)
	if cur := p.gen.Load(); cur != g {
		p.checkSessionLocked(e, g, cur)
	}
	return ctx, e, true
}

func (p *Proxy) untrackSession(e *wsEntry) {
	p.wsMu.Lock()
	delete(p.wsSessions, e)
	if e.timer != nil {
		e.timer.Stop()
	}
	p.wsMu.Unlock()
	if pg := e.chain.pinned.Swap(nil); pg != nil {
		p.release(pg)
	}
	e.cancel(nil)
	// sessionFinished comes once the session's log line is written.
}

// sessionFinished stops counting a session for shutdown: closeSessions
// waits for every session's end and its log line.
func (p *Proxy) sessionFinished() { p.wsWG.Done() }

// reconcileSessions checks every session against cur, the generation that
// just replaced old.
func (p *Proxy) reconcileSessions(old, cur *generation) {
	p.wsMu.Lock()
	defer p.wsMu.Unlock()
	for e := range p.wsSessions {
		p.checkSessionLocked(e, old, cur)
	}
}

// checkSessionLocked schedules the close (1001, after server.reload_grace)
// of a session that cur cannot serve as it is: its route is gone (prev,
// which still had it, stays pinned for the session's filters until then),
// its route now goes to another upstream or no longer lists its target, or
// it relays raw bytes while its route now has message hooks. A raw
// connection cannot start parsing frames mid-stream; closing it lets the
// client reconnect into the filtered mode, which a policy filter needs.
func (p *Proxy) checkSessionLocked(e *wsEntry, prev, cur *generation) {
	if e.timer != nil {
		return // already closing
	}
	why := ""
	r := cur.routes[e.route]
	switch {
	case r == nil:
		why = "route removed"
		if e.chain.pinned.Load() == nil && prev.routes[e.route] != nil {
			// prev is held by whoever called (the upgrade or Apply
			// before retiring it), so it has not drained.
			prev.inflight.Add(1)
			e.chain.pinned.Store(prev)
		}
	case r.pool == nil || r.pool.name != e.upstream:
		why = "route no longer goes to its upstream"
	case !r.pool.hasTarget(e.target):
		why = "upstream target removed"
	case e.chain.raw() && r.chain.Hooks().Has(filter.HookMessage):
		why = "route gained message hooks"
	default:
		return
	}
	grace := cur.cfg.Server.ReloadGrace.Duration
	p.log.Info("host: closing a WebSocket after a reload", "route", e.route, "reason", why, "grace", grace)
	cancel := e.cancel
	e.timer = time.AfterFunc(grace, func() { cancel(wsrelay.ErrReloaded) })
}

// closeSessions closes every WebSocket (the relay sends 1001) and waits for
// the relays to finish, or for ctx.
func (p *Proxy) closeSessions(ctx context.Context) error {
	p.wsMu.Lock()
	p.wsClosing = true
	for e := range p.wsSessions {
		e.cancel(nil)
	}
	p.wsMu.Unlock()
	done := make(chan struct{})
	go func() { p.wsWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
