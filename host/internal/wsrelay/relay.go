package wsrelay

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/upstream"
)

// Options tunes one proxied WebSocket session.
type Options struct {
	MaxMessageSize   int64
	IdleTimeout      time.Duration
	PingInterval     time.Duration
	HandshakeTimeout time.Duration // dial + upstream handshake
}

// Stats is what Serve reports about one session, for logs and metrics.
type Stats struct {
	DialErr   error    // non-nil when the upstream could not be reached (the relay already answered 502, or 504 on timeout)
	Status    int      // status sent to the client for the handshake (101, or the upstream's refusal)
	Messages  [2]int64 // indexed by filter.Direction
	Bytes     [2]int64
	CloseCode int
	CloseBy   string // "client", "upstream", "proxy"
	Duration  time.Duration
}

// The two sides of a session. A message read from side d travels in
// Direction(d): the client is the source of ClientToUpstream, the upstream of
// UpstreamToClient.
const (
	sideClient   = int(filter.ClientToUpstream)
	sideUpstream = int(filter.UpstreamToClient)
)

var sideName = [2]string{"client", "upstream"}

const (
	// writeWait bounds one write to a peer: a peer that stops reading
	// cannot hold a relay goroutine forever.
	writeWait = 10 * time.Second
	// closeGrace is how long the relay waits for the close handshake to
	// finish (the other side's reply, the TCP close) once a side closed.
	closeGrace = 2 * time.Second
	// replyLimit bounds how long relaying a refused handshake's body may
	// take when no HandshakeTimeout is set.
	replyLimit = 10 * time.Second
	// minPongWait is the least time a peer gets to answer a keep-alive
	// ping (otherwise PingInterval): a ping may queue behind a burst of data.
	minPongWait = time.Second
	// pingPayload marks the relay's own keep-alive pings, so that their
	// pongs are not forwarded to the other side in message mode.
	pingPayload = "sluice-keepalive"
)

// gorillaReadBuf is the size of gorilla's own read buffer on each side in
// message mode. It only parses frame headers and control frames out of what
// sock hands it (which reads into pooled 16 KiB buffers; payloads larger
// than this buffer are read past it), so it can be small: it is what an
// idle message-mode session keeps per side. gorilla needs at least 125
// bytes (a whole control frame payload).
const gorillaReadBuf = 128

// writePool lends gorilla its write buffers only while a message is being
// written, so an idle session holds none.
var writePool sync.Pool

// upstreamDialer is the shared, tuned dialer for upstream WebSockets: small read
// buffer, pooled write buffer as large as the relay's batches (so that
// messages up to that size go out as one frame), no compression (frames stay
// readable to filters and to the raw-mode frame tracker), no proxy from the
// environment. Serve copies it per session to add the per-session
// dial hooks.
var upstreamDialer = websocket.Dialer{
	ReadBufferSize:  gorillaReadBuf,
	WriteBufferSize: relayBufSize,
	WriteBufferPool: &writePool,
}

// clientUpgrader upgrades the client. Its buffers are sized like the dialer's:
// gorilla then keeps neither of the 4 KiB buffers net/http allocated for the
// connection, which are released with the handler once the relay runs.
//
// CheckOrigin accepts every origin: the proxy forwards Origin to the
// upstream, and the upstream decides.
var clientUpgrader = websocket.Upgrader{
	ReadBufferSize:  gorillaReadBuf,
	WriteBufferSize: relayBufSize,
	WriteBufferPool: &writePool,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// Params is what Serve needs to relay one session.
type Params struct {
	// Context ends the session when cancelled: both sides get 1001. A
	// *SessionContext is the cheap choice for sessions that may idle for
	// hours. Nil means only the peers and the filters end the session.
	Context context.Context
	// Target is the base URL of the upstream target (http, https, ws or
	// wss); the request's path and query are appended to it.
	Target *url.URL
	// Header is what to send upstream with the handshake: the caller has
	// removed the client's hop-by-hop headers and added the forwarding
	// ones. The relay adds the WebSocket handshake headers itself.
	Header http.Header
	// Chain runs the session's hooks. Its Hooks, asked once at upgrade
	// time, choose the relay mode; nil relays raw bytes.
	Chain filter.Chain
	// Session is the filters' view of the session.
	Session *filter.Session
	// Options are the session's limits and keep-alive.
	Options Options
	// Dialer connects to the target: the upstream's own, so that its
	// connect_timeout, TLS settings and TCP keep-alive apply to WebSocket
	// handshakes as to requests. Nil dials without a connect timeout.
	Dialer *upstream.Dialer
	// Log receives the relay's own events; nil discards them.
	Log *slog.Logger
	// OnEnd is called once, from a relay goroutine, when a session that
	// Serve reported running ends, with its final stats (after the
	// chain's OnClose).
	OnEnd func(Stats)
}

// Serve proxies one upgrade request.
//
// It dials the upstream first, so that a refused or failed upstream handshake
// is answered before the client is upgraded: a refusal (any status but 101)
// is relayed as the upstream sent it, an unreachable upstream gets 502 and a
// timeout 504. Then it upgrades the client and starts the relay, which runs
// until either side closes, p.Context is cancelled (both sides get 1001) or
// a filter closes it. See host/RATIONALE.md ("WebSocket relay") for the two
// relay modes and the close-code semantics.
//
// Serve returns as soon as the session runs, or failed: when running is
// true, the relay goes on in goroutines of its own, so that the caller's
// HTTP handler can return and net/http release its goroutine and the
// buffers of the hijacked connection; the relay then calls p.OnEnd once.
// When running is false, st is final and p.OnEnd is never called.
func Serve(w http.ResponseWriter, r *http.Request, p Params) (st Stats, running bool) {
	start := time.Now()
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Context == nil {
		p.Context = context.Background()
	}

	// Refuse a malformed handshake before dialling anything.
	if r.Method != http.MethodGet || !websocket.IsWebSocketUpgrade(r) ||
		!upstream.HasToken(r.Header, "Sec-Websocket-Version", "13") || r.Header.Get("Sec-Websocket-Key") == "" {
		w.Header().Set("Sec-Websocket-Version", "13")
		http.Error(w, "host: not a valid WebSocket handshake", http.StatusBadRequest)
		st.Status = http.StatusBadRequest
		return st, false
	}

	// The chain decides the relay mode once, at upgrade time.
	var hooks filter.HookSet
	if p.Chain != nil {
		hooks = p.Chain.Hooks()
	}

	// The handshakes run on the handler's goroutine, which ends with them:
	// the stack they grew goes with it.
	hs := handshake(w, r, &p, &st)
	if hs.client == nil {
		st.Duration = time.Since(start)
		return st, false
	}

	rs := &relayState{opt: p.Options, log: p.Log}
	s, chain, log := p.Session, p.Chain, p.Log
	done := func() {
		if chain != nil && chain.Hooks().Has(filter.HookClose) {
			callHook(s, log, func() { chain.OnClose(s) })
		}
		st := Stats{Status: http.StatusSwitchingProtocols}
		rs.fill(&st)
		st.Duration = time.Since(start)
		if p.OnEnd != nil {
			p.OnEnd(st)
		}
	}
	if hooks.Has(filter.HookMessage) {
		startMessages(p.Context, rs, hs, chain, s, done)
	} else {
		// The gorilla Conns are dropped: raw mode owns the sockets.
		startRaw(p.Context, rs, hs.clientSock, hs.upSock, hs.leftover, done)
	}
	return st, true
}

// callHook runs one hook call serialised with the other hook calls of the
// session. A panicking filter is logged and reported as false, so that a bug
// in a Go Chain cannot take the proxy down from a relay goroutine.
func callHook(s *filter.Session, log *slog.Logger, f func()) (ok bool) {
	ok = true
	s.Serialize(func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("wsrelay: websocket filter panicked", "session", s.ID, "panic", p)
				ok = false
			}
		}()
		f()
	})
	return ok
}

// closeReason trims a close reason to the 123 bytes a close frame allows,
// at a UTF-8 boundary.
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	s = s[:123]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// sendableCode maps a close code a filter asked for to one that may be
// sent on the wire: 0 means a normal close, and codes reserved for local use
// (1005, 1006, 1015) or outside the registered ranges become 1011.
func sendableCode(code int) int {
	switch {
	case code == 0:
		return websocket.CloseNormalClosure
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return code
	}
	return websocket.CloseInternalServerErr
}
