package host

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/wsrelay"
	"github.com/sluiceproxy/sluice/host/metrics"
)

// serveUpgrade hands a WebSocket upgrade to the relay after the route's
// OnUpgrade hook. The session holds its generation only until the relay has
// chosen its mode: it may outlive many reloads, and takes the route's
// current chain from each new one (see liveChain).
//
// Once both handshakes are done, serveUpgrade returns while the relay runs
// on: net/http then frees the handler's goroutine, its stack and the
// connection's buffers, which would otherwise stay for the session's life.
// What the end of the handler used to do (untrack the session, the target's
// active count, the access log record with the session's stats) runs when
// the relay ends.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, g *generation, rt *route, x *filter.Exchange, rec *accessRecord) {
	released := false
	release := func() {
		if !released {
			released = true
			p.release(g)
		}
	}
	defer release()
	rec.websocket = true

	if rt.chain.Hooks().Has(filter.HookUpgrade) {
		if reply := rt.chain.OnUpgrade(x); reply != nil {
			rec.filterReply(reply)
			lw := &logWriter{ResponseWriter: w}
			writeReply(lw, rec.id, reply)
			rec.status, rec.bytes = lw.status, lw.bytes
			return
		}
	}
	t := rt.pool.pick()
	if t == nil {
		rec.proxyError(metrics.CauseNoHealthyTarget)
		localError(w, rec.id, http.StatusServiceUnavailable, "host: no healthy target")
		rec.status = http.StatusServiceUnavailable
		return
	}
	rec.target = t.url.Host

	lc := &liveChain{p: p, route: rt.name, startHooks: rt.chain.Hooks()}
	lc.start.Store(g) // handed over: the relay's first Hooks call releases it
	released = true
	defer lc.releaseStart()
	ctx, entry, ok := p.trackSession(rt, t, lc, g)
	if !ok {
		rec.proxyError(metrics.CauseShuttingDown)
		localError(w, rec.id, http.StatusServiceUnavailable, "host: shutting down")
		rec.status = http.StatusServiceUnavailable
		return
	}
	t.active.Add(1)
	untrack := func() {
		t.active.Add(-1)
		p.untrackSession(entry)
	}

	opt := g.cfg.Server.WebSocket
	wsOpt := wsrelay.Options{
		MaxMessageSize:   int64(opt.MaxMessageSize),
		IdleTimeout:      opt.IdleTimeout.Duration,
		PingInterval:     opt.PingInterval.Duration,
		HandshakeTimeout: opt.HandshakeTimeout.Duration,
	}
	// The session keeps the request for its filters and its log line, but
	// not the request's context, which holds net/http's connection contexts.
	lr := r.WithContext(context.Background())
	s := &filter.Session{ID: rec.id, Route: rt.name, Upgrade: lr, ClientAddr: x.ClientAddr, State: x.State}
	pl := rt.pool

	// No deadline to clear for server.read_timeout and write_timeout:
	// hijacking the connection clears them (TestWebSocketOutlivesServerTimeouts).
	// Answers the relay writes before upgrading (refusals, 502) carry it.
	w.Header().Set("X-Request-Id", rec.id)
	// The session's log line needs both the handler's return (logAccess)
	// and the session's end; the session may end before wsrelay.Serve even
	// returns. Its end function holds only wl, never the handler's state
	// (which holds the connection's ResponseWriter).
	wl := &wsLogState{req: lr}
	wl.pending.Store(2)
	rec.wsLog = wl
	traffic := new(wsrelay.Counters)
	ms := rt.m.OpenSession(lc.raw(), traffic)
	st, running := wsrelay.Serve(w, r, wsrelay.Params{
		Context: ctx, Target: t.url, Header: upstreamHeader(r), Chain: lc, Session: s,
		Options: wsOpt, Log: p.log, Counters: traffic,
		OnEnd: func(st wsrelay.Stats) {
			ms.End(st.CloseCode, st.CloseBy)
			untrack()
			wl.ws = st
			p.wsLogDone(wl)
		},
	})
	if st.DialErr != nil {
		pl.connFailed(t)
		rec.err = st.DialErr
		rec.proxyError(dialCause(st.Status))
	} else {
		pl.connOK(t)
	}
	rec.status = st.Status
	if running {
		ms.Upgraded()
	} else {
		ms.Abort()
		rec.wsLog = nil
		rec.ws = &st
		untrack()
		p.wsWG.Done() // the handler's own log line follows
	}
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
	// wsWG.Done comes once the session's log line is written (wsLogDone).
}

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
			// prev is held by whoever called (the upgrade or ApplyWith
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

// hopHeaders are the connection-level headers a proxy must not forward
// (RFC 9110 section 7.6.1), plus the WebSocket handshake headers that the
// relay's dialer sets itself.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions", "Sec-Websocket-Accept",
}

// upstreamHeader is the header set sent to the upstream on a WebSocket
// handshake: the client's end-to-end headers (Cookie, Origin,
// Authorization, Sec-WebSocket-Protocol...) and the forwarding headers.
func upstreamHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Host", r.Host)
	h.Set("X-Forwarded-Proto", scheme(r))
	h.Del("Forwarded")
	// The upstream sees the Host the client asked for, as for plain HTTP; the
	// WebSocket dialer takes it from this header.
	h.Set("Host", r.Host)
	h.Add("Via", "1.1 sluice")
	return h
}

// accessRecord collects what the access log line says about one request.
type accessRecord struct {
	id         string
	route      string
	target     string
	replied    bool   // a filter answered
	filterErr  string // a filter failed and the policy answered: the cause
	cause      int8   // the proxy answered itself: metrics.Cause + 1, or 0
	rm         *metrics.Route
	took       time.Duration // as recorded in the metrics
	body       countingBody  // the request body, counted as it is read
	websocket  bool
	clientGone bool
	err        error
	// status and bytes, for WebSockets, which bypass the logWriter.
	status int
	bytes  int64
	ws     *wsrelay.Stats

	// wsLog is set while a WebSocket session runs on past its handler.
	wsLog *wsLogState
}

// wsLogState carries the access log line of a WebSocket session that
// outlives its handler. The line waits for two halves, the handler's return
// (logAccess, which copies the record and brings the request's start) and
// the session's end (wsLogDone, which brings the stats); whichever comes
// last writes it, and only then does the session stop counting for
// shutdown. The atomic count orders what each half stored before it.
type wsLogState struct {
	pending atomic.Int32
	req     *http.Request // the session's copy of the request
	rec     accessRecord  // the handler's record, as it returned
	start   time.Time
	ws      wsrelay.Stats
}

// wsLogDone is the session's half of its access log line.
func (p *Proxy) wsLogDone(wl *wsLogState) {
	if wl.pending.Add(-1) == 0 {
		p.wsLogWrite(wl)
	}
}

func (p *Proxy) wsLogWrite(wl *wsLogState) {
	rec := &wl.rec
	rec.ws = &wl.ws
	rec.bytes = wl.ws.Bytes[0] + wl.ws.Bytes[1]
	p.writeAccess(context.Background(), wl.req, 0, 0, rec, wl.start)
	p.wsWG.Done()
}

// logWriter records the status and size of a response for the access log.
// It passes Flush through (streaming) and unwraps for http.ResponseController.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client at once.
func (w *logWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logAccess writes one structured line per request, and per WebSocket
// session when it ends.
//
// A WebSocket session that outlives its handler is logged when it ends:
// here, the handler only hands the request over.
func (p *Proxy) logAccess(r *http.Request, lw *logWriter, rec *accessRecord, start time.Time) {
	p.recordRequest(lw, rec, start)
	if wl := rec.wsLog; wl != nil {
		// A copy: the handler's state, rec included, is released now.
		wl.rec, wl.start = *rec, start
		wl.rec.wsLog = nil
		if wl.pending.Add(-1) == 0 {
			p.wsLogWrite(wl)
		}
		return
	}
	p.writeAccess(r.Context(), r, lw.status, lw.bytes, rec, start)
}

// writeAccess writes the access log line; status and size are the
// logWriter's, which a WebSocket's own record overrides.
func (p *Proxy) writeAccess(ctx context.Context, r *http.Request, status int, size int64, rec *accessRecord, start time.Time) {
	if !p.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if rec.websocket && rec.status != 0 {
		status, size = rec.status, rec.bytes
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", rec.route),
		slog.String("upstream", rec.target),
		slog.Int("status", status),
		slog.Int64("bytes", size),
		slog.Duration("duration", rec.elapsed(start)),
		slog.String("request_id", rec.id),
		slog.String("client", r.RemoteAddr),
	)
	if rec.replied {
		attrs = append(attrs, slog.Bool("filter_reply", true))
	}
	if rec.filterErr != "" {
		attrs = append(attrs, slog.String("filter_error", rec.filterErr))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	msg := "access"
	if ws := rec.ws; ws != nil {
		msg = "websocket"
		attrs = append(attrs,
			slog.Int64("messages_in", ws.Messages[filter.ClientToUpstream]),
			slog.Int64("messages_out", ws.Messages[filter.UpstreamToClient]),
			slog.Int64("bytes_in", ws.Bytes[filter.ClientToUpstream]),
			slog.Int64("bytes_out", ws.Bytes[filter.UpstreamToClient]),
			slog.Int("close_code", ws.CloseCode),
			slog.String("close_by", ws.CloseBy),
		)
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}
