package host

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// serveUpgrade hands a WebSocket upgrade to the relay after the route's
// OnUpgrade hook. The session does not hold its generation: it may outlive
// many reloads, and takes the route's current chain from each new one.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, g *generation, rt *route, x *Exchange, rec *accessRecord) {
	released := false
	release := func() {
		if !released {
			released = true
			p.release(g)
		}
	}
	defer release()
	rec.websocket = true

	if rt.chain.Hooks().Has(HookUpgrade) {
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
	t.active.Add(1)
	defer t.active.Add(-1)

	ctx, entry, ok := p.trackSession(rt.name)
	if !ok {
		localError(w, rec.id, http.StatusServiceUnavailable, "host: shutting down")
		rec.status = http.StatusServiceUnavailable
		return
	}
	defer p.untrackSession(entry)

	opt := g.cfg.Server.WebSocket
	wsOpt := wsOptions{
		MaxMessageSize:   int64(opt.MaxMessageSize),
		IdleTimeout:      opt.IdleTimeout.Duration,
		PingInterval:     opt.PingInterval.Duration,
		HandshakeTimeout: opt.HandshakeTimeout.Duration,
	}
	s := &Session{ID: rec.id, Route: rt.name, Upgrade: r, ClientAddr: x.ClientAddr, State: x.State}
	pl, name, fallback := rt.pool, rt.name, rt.chain
	chain := func() Chain {
		if cur := p.gen.Load().routes[name]; cur != nil {
			return cur.chain
		}
		return fallback
	}
	release()

	// No deadline to clear for server.read_timeout and write_timeout:
	// hijacking the connection clears them (TestWebSocketOutlivesServerTimeouts).
	// Answers the relay writes before upgrading (refusals, 502) carry it.
	w.Header().Set("X-Request-Id", rec.id)
	st := serveWebSocket(ctx, w, r, t.url, upstreamHeader(r), chain, s, wsOpt, p.log)
	if st.DialErr != nil {
		pl.connFailed(t)
		rec.err = st.DialErr
	} else {
		pl.connOK(t)
	}
	rec.status = st.Status
	rec.bytes = st.Bytes[0] + st.Bytes[1]
	rec.ws = &st
}

// trackSession registers a WebSocket session so that shutdown, or a reload
// that removes its route, can close it. It fails once shutdown has begun.
func (p *Proxy) trackSession(route string) (context.Context, *wsEntry, bool) {
	p.wsMu.Lock()
	defer p.wsMu.Unlock()
	if p.wsClosing {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &wsEntry{route: route, cancel: cancel}
	p.wsSessions[e] = struct{}{}
	p.wsWG.Add(1)
	return ctx, e, true
}

func (p *Proxy) untrackSession(e *wsEntry) {
	p.wsMu.Lock()
	delete(p.wsSessions, e)
	p.wsMu.Unlock()
	e.cancel()
	p.wsWG.Done()
}

// closeRemovedRoutes closes the sessions of routes that g no longer has.
func (p *Proxy) closeRemovedRoutes(g *generation) {
	p.wsMu.Lock()
	defer p.wsMu.Unlock()
	for e := range p.wsSessions {
		if _, ok := g.routes[e.route]; !ok {
			e.cancel()
		}
	}
}

// closeSessions closes every WebSocket (the relay sends 1001) and waits for
// the relays to finish, or for ctx.
func (p *Proxy) closeSessions(ctx context.Context) error {
	p.wsMu.Lock()
	p.wsClosing = true
	for e := range p.wsSessions {
		e.cancel()
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
	replied    bool // a filter answered
	websocket  bool
	clientGone bool
	err        error
	// status and bytes, for WebSockets, which bypass the logWriter.
	status int
	bytes  int64
	ws     *wsStats
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
func (p *Proxy) logAccess(r *http.Request, lw *logWriter, rec *accessRecord, start time.Time) {
	if !p.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	status, size := lw.status, lw.bytes
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
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", rec.id),
		slog.String("client", r.RemoteAddr),
	)
	if rec.replied {
		attrs = append(attrs, slog.Bool("filter_reply", true))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	msg := "access"
	if ws := rec.ws; ws != nil {
		msg = "websocket"
		attrs = append(attrs,
			slog.Int64("messages_in", ws.Messages[ClientToUpstream]),
			slog.Int64("messages_out", ws.Messages[UpstreamToClient]),
			slog.Int64("bytes_in", ws.Bytes[ClientToUpstream]),
			slog.Int64("bytes_out", ws.Bytes[UpstreamToClient]),
			slog.Int("close_code", ws.CloseCode),
			slog.String("close_by", ws.CloseBy),
		)
	}
	p.log.LogAttrs(r.Context(), slog.LevelInfo, msg, attrs...)
}
