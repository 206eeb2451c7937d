package host

import (
	"context"
	"net/http"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/upstream"
	"github.com/sluiceproxy/sluice/host/internal/wsrelay"
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
			rec.replied = true
			lw := &logWriter{ResponseWriter: w}
			writeReply(lw, rec.id, reply)
			rec.status, rec.bytes = lw.status, lw.bytes
			return
		}
	}
	t := rt.pool.pick()
	if t == nil {
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
	st, running := wsrelay.Serve(w, r, wsrelay.Params{
		Context: ctx, Target: t.url, Header: upstreamHeader(r), Chain: lc, Session: s,
		Options: wsOpt, Log: p.log, Dialer: pl.client.Dialer(),
		OnEnd: func(st wsrelay.Stats) {
			untrack()
			wl.ws = st
			p.wsLogDone(wl)
		},
	})
	if st.DialErr != nil {
		pl.connFailed(t)
		rec.err = st.DialErr
	} else {
		pl.connOK(t)
	}
	rec.status = st.Status
	if !running {
		rec.wsLog = nil
		rec.ws = &st
		untrack()
		p.sessionFinished() // the handler's own log line follows
	}
}

// upstreamHeader is the header set sent to the upstream on a WebSocket
// handshake: the client's end-to-end headers (Cookie, Origin,
// Authorization, Sec-WebSocket-Protocol...) and the forwarding headers, as
// for a plain request. The relay adds the handshake headers itself.
func upstreamHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	upstream.RemoveHopByHop(h)
	upstream.SetForwarded(h, r)
	// The upstream sees the Host the client asked for, as for plain HTTP; the
	// WebSocket dialer takes it from this header.
	h.Set("Host", r.Host)
	return h
}
