package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
)

// wsOptions tunes one proxied WebSocket session.
type wsOptions struct {
	MaxMessageSize   int64
	IdleTimeout      time.Duration
	PingInterval     time.Duration
	HandshakeTimeout time.Duration // dial + upstream handshake
}

// wsStats is what serveWebSocket reports about one session, for logs and metrics.
type wsStats struct {
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
	wsClient   = int(filter.ClientToUpstream)
	wsUpstream = int(filter.UpstreamToClient)
)

var wsSideName = [2]string{"client", "upstream"}

const (
	// wsWriteWait bounds one write to a peer: a peer that stops reading
	// cannot hold a relay goroutine forever.
	wsWriteWait = 10 * time.Second
	// wsCloseGrace is how long the relay waits for the close handshake to
	// finish (the other side's reply, the TCP close) once a side closed.
	wsCloseGrace = 2 * time.Second
	// wsReplyLimit bounds how long relaying a refused handshake's body may
	// take when no HandshakeTimeout is set.
	wsReplyLimit = 10 * time.Second
	// wsMinPongWait is the least time a peer gets to answer a keep-alive
	// ping (otherwise PingInterval): a ping may queue behind a burst of data.
	wsMinPongWait = time.Second
	// wsPingPayload marks the relay's own keep-alive pings, so that their
	// pongs are not forwarded to the other side in message mode.
	wsPingPayload = "sluice-keepalive"
)

// wsGorillaReadBuf is the size of gorilla's own read buffer on each side in
// message mode. It only parses frame headers and control frames out of what
// wsSock hands it (which reads into pooled 16 KiB buffers; payloads larger
// than this buffer are read past it), so it can be small: it is what an
// idle message-mode session keeps per side. gorilla needs at least 125
// bytes (a whole control frame payload).
const wsGorillaReadBuf = 128

// wsWritePool lends gorilla its write buffers only while a message is being
// written, so an idle session holds none.
var wsWritePool sync.Pool

// wsDialer is the shared, tuned dialer for upstream WebSockets: small read
// buffer, pooled write buffer as large as the relay's batches (so that
// messages up to that size go out as one frame), no compression (frames stay
// readable to filters and to the raw-mode frame tracker), no proxy from the
// environment. serveWebSocket copies it per session to add the per-session
// dial hooks.
var wsDialer = websocket.Dialer{
	ReadBufferSize:  wsGorillaReadBuf,
	WriteBufferSize: wsRelayBufSize,
	WriteBufferPool: &wsWritePool,
}

// wsUpgrader upgrades the client. Its buffers are sized like the dialer's:
// gorilla then keeps neither of the 4 KiB buffers net/http allocated for the
// connection, which are released with the handler once the relay runs.
//
// CheckOrigin accepts every origin: the proxy forwards Origin to the
// upstream, and the upstream decides.
var wsUpgrader = websocket.Upgrader{
	ReadBufferSize:  wsGorillaReadBuf,
	WriteBufferSize: wsRelayBufSize,
	WriteBufferPool: &wsWritePool,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// serveWebSocket proxies one upgrade request.
//
// It dials the upstream first, so that a refused or failed upstream handshake
// is answered before the client is upgraded: a refusal (any status but 101)
// is relayed as the upstream sent it, an unreachable upstream gets 502 and a
// timeout 504. Then it upgrades the client and starts the relay, which runs
// until either side closes, ctx is cancelled (both sides get 1001) or a
// filter closes it. See RATIONALE.md ("WebSocket relay") for the two relay
// modes and the close-code semantics.
//
// serveWebSocket returns as soon as the session runs, or failed: when
// running is true, the relay goes on in goroutines of its own, so that the
// caller's HTTP handler can return and net/http release its goroutine and
// the buffers of the hijacked connection; the relay calls end once, from one
// of its goroutines, with the session's stats (after the chain's OnClose).
// When running is false, st is final and end is never called.
func serveWebSocket(ctx context.Context, w http.ResponseWriter, r *http.Request, target *url.URL,
	upHeader http.Header, chain func() filter.Chain, s *filter.Session, opt wsOptions, log *slog.Logger,
	end func(wsStats)) (st wsStats, running bool) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	// Refuse a malformed handshake before dialling anything.
	if r.Method != http.MethodGet || !websocket.IsWebSocketUpgrade(r) ||
		!wsHeaderHasToken(r.Header, "Sec-Websocket-Version", "13") || r.Header.Get("Sec-Websocket-Key") == "" {
		w.Header().Set("Sec-Websocket-Version", "13")
		http.Error(w, "host: not a valid WebSocket handshake", http.StatusBadRequest)
		st.Status = http.StatusBadRequest
		return st, false
	}

	// The chain decides the relay mode once, at upgrade time.
	hooks := wsHooks(chain)

	// The handshakes run on the handler's goroutine, which ends with them:
	// the stack they grew goes with it.
	hs := wsHandshake(ctx, w, r, target, upHeader, opt, log, &st)
	if hs.client == nil {
		st.Duration = time.Since(start)
		return st, false
	}

	rs := &wsRelayState{opt: opt, log: log}
	done := func() {
		if c := chain(); c != nil && c.Hooks().Has(filter.HookClose) {
			wsCallHook(s, log, func() { c.OnClose(s) })
		}
		st := wsStats{Status: http.StatusSwitchingProtocols}
		rs.fill(&st)
		st.Duration = time.Since(start)
		end(st)
	}
	if hooks.Has(filter.HookMessage) {
		wsStartMessages(ctx, rs, hs, chain, s, done)
	} else {
		// The gorilla Conns are dropped: raw mode owns the sockets.
		wsStartRaw(ctx, rs, hs.clientSock, hs.upSock, hs.leftover, done)
	}
	return st, true
}

// wsHandshakes is what the two handshakes leave for the relay.
type wsHandshakes struct {
	client, up         *websocket.Conn
	clientSock, upSock *wsSock
	leftover           []byte // bytes the upstream sent right behind its 101, which gorilla's reader took
}

// wsHijackWriter hands gorilla's Upgrade the hijacked connection wrapped in
// a wsSock.
type wsHijackWriter struct {
	http.ResponseWriter
	sock *wsSock
}

// Hijack hijacks the underlying connection.
func (h *wsHijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.sock = newWSSock(c)
	return h.sock, brw, nil
}

// wsHandshake dials the upstream, then upgrades the client. When either
// fails it answers the client, fills st and returns no client.
func wsHandshake(ctx context.Context, w http.ResponseWriter, r *http.Request, target *url.URL,
	upHeader http.Header, opt wsOptions, log *slog.Logger, st *wsStats) wsHandshakes {
	up, resp, hs, err := wsDialUpstream(ctx, r, target, upHeader, opt)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && errors.Is(err, websocket.ErrBadHandshake) {
			// The upstream answered, and said no: relay its answer.
			st.Status = wsRelayRefusal(w, resp, hs, opt)
			return wsHandshakes{}
		}
		st.DialErr = err
		st.Status = http.StatusBadGateway
		if wsIsTimeout(err) {
			st.Status = http.StatusGatewayTimeout
		}
		log.Debug("host: websocket upstream unreachable", "target", target.Host, "err", err)
		http.Error(w, http.StatusText(st.Status), st.Status)
		return wsHandshakes{}
	}

	u := wsUpgrader
	u.Error = func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
		st.Status = status
		w.Header().Set("Sec-Websocket-Version", "13")
		http.Error(w, http.StatusText(status), status)
	}
	hw := &wsHijackWriter{ResponseWriter: w}
	client, err := u.Upgrade(hw, r, wsResponseHeader(resp.Header))
	if err != nil {
		if st.Status == 0 {
			st.Status = http.StatusBadRequest // hijacked, then refused by gorilla
		}
		up.Close()
		log.Debug("host: websocket client upgrade failed", "err", err)
		return wsHandshakes{}
	}
	st.Status = http.StatusSwitchingProtocols
	out := wsHandshakes{client: client, up: up, clientSock: hw.sock, upSock: hs, leftover: hs.leftover()}
	hs.stopRecording()
	return out
}

// wsHooks returns the hook set of the chain in force now, or none.
func wsHooks(chain func() filter.Chain) filter.HookSet {
	if chain == nil {
		return 0
	}
	c := chain()
	if c == nil {
		return 0
	}
	return c.Hooks()
}

// wsCallHook runs one hook call serialised with the other hook calls of the
// session. A panicking filter is logged and reported as false, so that a bug
// in a Go Chain cannot take the proxy down from a relay goroutine.
func wsCallHook(s *filter.Session, log *slog.Logger, f func()) (ok bool) {
	ok = true
	s.Serialize(func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("host: websocket filter panicked", "session", s.ID, "panic", p)
				ok = false
			}
		}()
		f()
	})
	return ok
}

// leftover returns the bytes gorilla read from the upstream after the end of
// its 101 response: frames the upstream sent right after the handshake.
// (Bytes the socket read but gorilla did not take stay in the wsSock.)
func (s *wsSock) leftover() []byte {
	rd := bytes.NewReader(s.hs.rec)
	br := bufio.NewReader(rd)
	if _, err := http.ReadResponse(br, nil); err != nil {
		return nil
	}
	n := rd.Len() + br.Buffered()
	if n == 0 {
		return nil
	}
	return append([]byte(nil), s.hs.rec[len(s.hs.rec)-n:]...)
}

// wsDialUpstream dials the upstream and runs its handshake. On success it
// returns gorilla's Conn, the 101 response and the socket, still recording.
// On a refusal it returns the response with websocket.ErrBadHandshake, and
// the socket (still open) from which the whole response can be read again.
func wsDialUpstream(ctx context.Context, r *http.Request, target *url.URL, upHeader http.Header, opt wsOptions) (*websocket.Conn, *http.Response, *wsSock, error) {
	u := wsTargetURL(target, r.URL)
	hdr, protos := wsUpstreamHeader(upHeader)

	// The dial stops when the client's request or the proxy's context ends.
	dctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := wsAfterFunc(ctx, cancel)
	defer stop()
	if opt.HandshakeTimeout > 0 {
		var cancelT context.CancelFunc
		dctx, cancelT = context.WithTimeout(dctx, opt.HandshakeTimeout)
		defer cancelT()
	}

	var hs *wsSock
	wrap := func(c net.Conn) net.Conn {
		hs = newWSSock(c)
		hs.hs = &wsRecording{recording: true, holdClose: true}
		return hs
	}
	d := wsDialer
	d.Subprotocols = protos
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
	d.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(c, &tls.Config{ServerName: host, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return wrap(tc), nil
	}

	conn, resp, err := d.DialContext(dctx, u.String(), hdr)
	if err != nil {
		if hs != nil && !(resp != nil && errors.Is(err, websocket.ErrBadHandshake)) {
			hs.stopRecording()
			hs.Close()
			hs.release()
			hs = nil
		}
		return nil, resp, hs, err
	}
	return conn, resp, hs, nil
}

// wsRelayRefusal sends the upstream's refusal of the handshake to the client:
// status, headers and the whole body. It returns the status sent.
func wsRelayRefusal(w http.ResponseWriter, gresp *http.Response, hs *wsSock, opt wsOptions) int {
	resp := gresp
	if hs != nil {
		defer func() {
			hs.stopRecording()
			hs.Close()
			hs.release()
		}()
		limit := opt.HandshakeTimeout
		if limit <= 0 {
			limit = wsReplyLimit
		}
		hs.SetReadDeadline(time.Now().Add(limit))
		// Read the response again from its first byte: what gorilla read,
		// then the rest of the socket (what the wsSock holds first).
		hs.hs.recording = false
		br := bufio.NewReader(io.MultiReader(bytes.NewReader(hs.hs.rec), hs))
		if again, err := http.ReadResponse(br, nil); err == nil {
			resp = again
		}
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		if wsHopHeader(k) {
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	for _, k := range wsConnectionTokens(resp.Header) {
		h.Del(k)
	}
	if resp.ContentLength >= 0 && resp.Header.Get("Content-Length") != "" {
		h.Set("Content-Length", resp.Header.Get("Content-Length"))
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return resp.StatusCode
}

// wsTargetURL maps the target's base URL and the request's path and query to
// the upstream's ws:// or wss:// URL.
func wsTargetURL(target, req *url.URL) *url.URL {
	u := *target
	switch u.Scheme {
	case "https", "wss":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.Path = wsJoin(target.Path, req.Path)
	rp := wsJoin(target.EscapedPath(), req.EscapedPath())
	if rp != u.Path {
		u.RawPath = rp
	} else {
		u.RawPath = ""
	}
	switch {
	case target.RawQuery == "":
		u.RawQuery = req.RawQuery
	case req.RawQuery == "":
		u.RawQuery = target.RawQuery
	default:
		u.RawQuery = target.RawQuery + "&" + req.RawQuery
	}
	return &u
}

func wsJoin(a, b string) string {
	switch {
	case a == "" || a == "/":
		if b == "" {
			return "/"
		}
		return b
	case b == "" || b == "/":
		return a
	}
	return strings.TrimSuffix(a, "/") + "/" + strings.TrimPrefix(b, "/")
}

// wsUpstreamHeader returns the headers to send upstream with canonical keys,
// without the ones gorilla sets itself (and refuses twice), and the
// subprotocols the client offered, in order.
func wsUpstreamHeader(in http.Header) (http.Header, []string) {
	out := make(http.Header, len(in))
	var protos []string
	for k, vs := range in {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch ck {
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
			"Sec-Websocket-Extensions", "Sec-Websocket-Accept":
			continue
		case "Sec-Websocket-Protocol":
			for _, v := range vs {
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p != "" {
						protos = append(protos, p)
					}
				}
			}
			continue
		}
		out[ck] = append(out[ck], vs...)
	}
	return out, protos
}

// wsResponseHeader picks the headers of the upstream's 101 response that the
// client should see too (Set-Cookie, the chosen subprotocol, custom headers);
// gorilla writes the handshake headers itself.
func wsResponseHeader(in http.Header) http.Header {
	out := make(http.Header, len(in))
	conn := wsConnectionTokens(in)
	for k, vs := range in {
		if wsHopHeader(k) {
			continue
		}
		switch k {
		case "Sec-Websocket-Accept", "Sec-Websocket-Extensions", "Sec-Websocket-Version", "Content-Length":
			continue
		}
		skip := false
		for _, t := range conn {
			if strings.EqualFold(t, k) {
				skip = true
			}
		}
		if !skip {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

// wsHopHeader reports whether k (canonical) is a hop-by-hop header.
func wsHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// wsConnectionTokens returns the header names listed in Connection, which
// are hop-by-hop too.
func wsConnectionTokens(h http.Header) []string {
	var out []string
	for _, v := range h["Connection"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "upgrade") {
				out = append(out, t)
			}
		}
	}
	return out
}

func wsHeaderHasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsIsTimeout reports whether a dial error is a timeout (answered with 504).
func wsIsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wsRelayState is what both relay modes share: counters, the close event and
// the keep-alive timer.
type wsRelayState struct {
	opt wsOptions
	log *slog.Logger

	msgs, bytes [2]atomic.Int64
	// heard is when anything (any frame, any byte) last came from a side,
	// in Unix nanoseconds: the liveness that keep-alive pings probe.
	heard [2]atomic.Int64
	// lastData is when a data message last started, in either direction:
	// what IdleTimeout measures.
	lastData atomic.Int64

	mu        sync.Mutex
	closed    bool // a close event is recorded; later ones are replies
	closeCode int
	closeBy   string
	done      bool
	timer     *time.Timer
	pingSent  [2]int64 // guarded by mu; only the timer uses it
}

// record notes the event that ends the session, if it is the first one. It
// reports whether it was.
func (rs *wsRelayState) record(by string, code int) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return false
	}
	rs.closed, rs.closeBy, rs.closeCode = true, by, code
	return true
}

func (rs *wsRelayState) isClosed() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.closed
}

func (rs *wsRelayState) fill(st *wsStats) {
	for d := range 2 {
		st.Messages[d] = rs.msgs[d].Load()
		st.Bytes[d] = rs.bytes[d].Load()
	}
	rs.mu.Lock()
	st.CloseCode, st.CloseBy = rs.closeCode, rs.closeBy
	rs.mu.Unlock()
}

// wsKeepalive is what the keep-alive timer asks of a relay mode.
type wsKeepalive interface {
	// ping sends a keep-alive ping to side, if it can now.
	ping(side int) bool
	// shutdown closes both sides with code and reason; by and statCode are
	// what the stats record when this is the first close event.
	shutdown(code int, reason, by string, statCode int)
}

// startTimer arms the one timer per session that sends keep-alive pings,
// detects peers that stopped answering them, and enforces IdleTimeout. It
// runs only when due, so an idle session costs no goroutine.
func (rs *wsRelayState) startTimer(k wsKeepalive) {
	now := time.Now().UnixNano()
	rs.heard[0].Store(now)
	rs.heard[1].Store(now)
	rs.lastData.Store(now)
	if rs.opt.PingInterval <= 0 && rs.opt.IdleTimeout <= 0 {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.timer = time.AfterFunc(rs.nextDue(now), func() { rs.tick(k) })
}

func (rs *wsRelayState) stopTimer() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.done = true
	if rs.timer != nil {
		rs.timer.Stop()
	}
}

// nextDue is the delay until something may be due. Callers hold mu.
func (rs *wsRelayState) nextDue(now int64) time.Duration {
	next := int64(1<<63 - 1)
	if idle := int64(rs.opt.IdleTimeout); idle > 0 {
		next = min(next, rs.lastData.Load()+idle)
	}
	if p := int64(rs.opt.PingInterval); p > 0 {
		for d := range 2 {
			if h := rs.heard[d].Load(); rs.pingSent[d] > h {
				// Awaiting an answer: look again after an interval (the
				// answer usually came, and the next ping is due), then when
				// the wait for it runs out.
				if now < rs.pingSent[d]+p {
					next = min(next, rs.pingSent[d]+p)
				} else {
					next = min(next, rs.pingSent[d]+rs.pongWait())
				}
			} else {
				next = min(next, h+p)
			}
		}
	}
	return max(time.Duration(next-now), time.Millisecond)
}

// pongWait is how long a peer has to answer a keep-alive ping.
func (rs *wsRelayState) pongWait() int64 {
	return int64(max(rs.opt.PingInterval, wsMinPongWait))
}

func (rs *wsRelayState) tick(k wsKeepalive) {
	now := time.Now().UnixNano()
	var action func()
	var pings []int
	rs.mu.Lock()
	if rs.done || rs.closed {
		rs.mu.Unlock()
		return
	}
	if idle := int64(rs.opt.IdleTimeout); idle > 0 && now-rs.lastData.Load() >= idle {
		action = func() { k.shutdown(websocket.CloseGoingAway, "idle timeout", "proxy", websocket.CloseGoingAway) }
	}
	if p := int64(rs.opt.PingInterval); p > 0 && action == nil {
		for d := range 2 {
			h := rs.heard[d].Load()
			switch {
			case rs.pingSent[d] > h && now-rs.pingSent[d] >= rs.pongWait():
				// No answer to the last ping in time: the peer is gone
				// without a close, like a dropped TCP connection.
				side := d
				action = func() {
					k.shutdown(websocket.CloseGoingAway, wsSideName[side]+" stopped answering pings", wsSideName[side], websocket.CloseAbnormalClosure)
				}
			case rs.pingSent[d] <= h && now-h >= p:
				pings = append(pings, d)
			}
		}
	}
	rs.mu.Unlock()

	if action != nil {
		action()
		return
	}
	for _, d := range pings {
		// The time is taken before the ping goes out: an answer may arrive
		// before ping returns, and must count as heard after it.
		sent := time.Now().UnixNano()
		if k.ping(d) {
			rs.mu.Lock()
			rs.pingSent[d] = sent
			rs.mu.Unlock()
		}
	}
	rs.mu.Lock()
	if !rs.done && !rs.closed {
		rs.timer.Reset(rs.nextDue(time.Now().UnixNano()))
	}
	rs.mu.Unlock()
}

// wsCloseReason trims a close reason to the 123 bytes a close frame allows,
// at a UTF-8 boundary.
func wsCloseReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	s = s[:123]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// wsSendableCode maps a close code a filter asked for to one that may be
// sent on the wire: 0 means a normal close, and codes reserved for local use
// (1005, 1006, 1015) or outside the registered ranges become 1011.
func wsSendableCode(code int) int {
	switch {
	case code == 0:
		return websocket.CloseNormalClosure
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return code
	}
	return websocket.CloseInternalServerErr
}

// wsSessionCtx is the context that ends a session when shutdown or a reload
// cancels it. The relay and the upstream dial listen to it only through its
// AfterFunc method (wsAfterFunc): a slot in a small slice, where a
// context.WithCancelCause context with context.AfterFunc would add a
// children map, a done channel and a context per registration to every idle
// session. Done makes its channel on demand, for any other user.
type wsSessionCtx struct {
	mu    sync.Mutex
	cause error // set once cancelled
	done  chan struct{}
	fns   []*func()
}

var _ context.Context = (*wsSessionCtx)(nil)

func newWSSessionCtx() *wsSessionCtx { return &wsSessionCtx{} }

// Deadline reports none: sessions end by cancellation only.
func (c *wsSessionCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value carries nothing.
func (c *wsSessionCtx) Value(any) any { return nil }

// Err returns context.Canceled once the session was cancelled.
func (c *wsSessionCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		return context.Canceled
	}
	return nil
}

// Done returns a channel closed on cancellation.
func (c *wsSessionCtx) Done() <-chan struct{} {
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
func (c *wsSessionCtx) AfterFunc(f func()) (stop func() bool) {
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

// cancel cancels the context, once; cause is kept for the record (nil means
// context.Canceled).
func (c *wsSessionCtx) cancel(cause error) {
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

// wsAfterFunc is context.AfterFunc, without the context it allocates when
// ctx can schedule the call itself (a wsSessionCtx).
func wsAfterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}
