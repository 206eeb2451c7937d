package testkit

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
)

// Wait bounds every wait of a WebSocket helper: a test that hangs fails
// after it instead of at the test binary's timeout.
const Wait = 5 * time.Second

// Chain is a filter.Chain written in Go: the hooks it declares and an
// optional message hook. It counts its calls and notices overlapping
// OnMessage calls, which the relay must never make on one session.
type Chain struct {
	// Set is what Hooks reports.
	Set filter.HookSet
	// Message, when set, decides each message; nil passes every message.
	Message func(*filter.Session, *filter.Message) filter.MessageVerdict

	// Closes counts OnClose calls, Calls OnMessage calls.
	Closes, Calls atomic.Int32
	// Overlap is set when an OnMessage call began while another ran.
	Overlap atomic.Bool
	inHook  atomic.Int32
}

var _ filter.Chain = (*Chain)(nil)

// Hooks returns c.Set.
func (c *Chain) Hooks() filter.HookSet { return c.Set }

// OnRequestHeaders lets the request through.
func (c *Chain) OnRequestHeaders(*filter.Exchange) *filter.Reply { return nil }

// OnUpgrade lets the upgrade through.
func (c *Chain) OnUpgrade(*filter.Exchange) *filter.Reply { return nil }

// OnResponseHeaders lets the response through.
func (c *Chain) OnResponseHeaders(*filter.Exchange) *filter.Reply { return nil }

// OnClose counts the call.
func (c *Chain) OnClose(*filter.Session) { c.Closes.Add(1) }

// OnMessage counts the call and asks c.Message, if set.
func (c *Chain) OnMessage(s *filter.Session, m *filter.Message) filter.MessageVerdict {
	if c.inHook.Add(1) > 1 {
		c.Overlap.Store(true)
	}
	defer c.inHook.Add(-1)
	c.Calls.Add(1)
	if c.Message == nil {
		return filter.MessageVerdict{}
	}
	return c.Message(s, m)
}

// VerdictChain is a message chain that acts on what the client sends:
// "upper:TEXT" forwards TEXT upper-cased, "drop" drops the message, "close"
// closes the session with 4000 "filter said no", "inject" sends
// "to-client" to the client and a binary "to-upstream" to the upstream
// (then passes the message), and "panic" panics. Messages from the upstream
// pass.
func VerdictChain() *Chain {
	return &Chain{Set: filter.HookMessage, Message: verdict}
}

func verdict(s *filter.Session, m *filter.Message) filter.MessageVerdict {
	if m.Direction != filter.ClientToUpstream {
		return filter.MessageVerdict{}
	}
	p := string(m.Payload)
	switch {
	case strings.HasPrefix(p, "upper:"):
		m.Payload = []byte(strings.ToUpper(p[6:]))
	case p == "drop":
		return filter.MessageVerdict{Action: filter.MessageDrop}
	case p == "close":
		return filter.MessageVerdict{Action: filter.MessageClose, CloseCode: 4000, CloseReason: "filter said no"}
	case p == "inject":
		return filter.MessageVerdict{Inject: []filter.Message{
			{Direction: filter.UpstreamToClient, Payload: []byte("to-client")},
			{Direction: filter.ClientToUpstream, Binary: true, Payload: []byte("to-upstream")},
		}}
	case p == "panic":
		panic("filter bug")
	}
	return filter.MessageVerdict{}
}

// Modes are the two relay modes: a chain without a message hook relays raw
// bytes, one with it relays message by message.
var Modes = []struct {
	Name  string
	Hooks filter.HookSet
}{
	{"raw", filter.HookClose},
	{"message", filter.HookMessage | filter.HookClose},
}

// CloseSeen is a close frame a backend received.
type CloseSeen struct {
	Code int
	Text string
}

// WSBackend is a gorilla WebSocket server on 127.0.0.1: it echoes every
// message, and a few messages and paths ask for other behaviours:
//
//   - message "die" drops the TCP connection without a close frame;
//   - "close:CODE:TEXT" sends that close frame;
//   - "stream:N" sends N binary messages of 30000 bytes, 1 ms apart;
//   - "push:N" sends N text messages "push 0"...;
//   - path /refuse answers 403 with a 2800-byte body;
//   - path /push sends its 101 and a first frame "hello" in one write.
//
// A request that is not an upgrade gets "plain" (or what
// WSBackendOptions.Plain answers). It answers the upgrade with Set-Cookie
// and X-Upstream headers, offers the subprotocol chat.v2, and reports close
// frames on Closes (the first 64 unread) and upgrade requests on Headers
// (the first 8 unread).
type WSBackend struct {
	Server  *httptest.Server
	Closes  chan CloseSeen
	Headers chan *http.Request
	opt     WSBackendOptions
}

// WSBackendOptions adapt a WSBackend to a test.
type WSBackendOptions struct {
	// Plain answers the requests that are not upgrades; nil answers
	// "plain".
	Plain http.Handler
	// OnUpgrade, when set, sees every upgrade request before it is
	// answered, from the backend's handler goroutine: for a test that
	// dials too often to read Headers, or matches handshakes to dials.
	OnUpgrade func(*http.Request)
}

// NewWSBackend starts a WSBackend, closed when the test ends.
func NewWSBackend(t testing.TB) *WSBackend {
	t.Helper()
	return NewWSBackendWith(t, WSBackendOptions{})
}

// NewWSBackendWith starts a WSBackend adapted by opt, closed when the test
// ends.
func NewWSBackendWith(t testing.TB, opt WSBackendOptions) *WSBackend {
	t.Helper()
	b := &WSBackend{Closes: make(chan CloseSeen, 64), Headers: make(chan *http.Request, 8), opt: opt}
	mux := http.NewServeMux()
	mux.HandleFunc("/refuse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reason", "nope")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, strings.Repeat("denied ", 400))
	})
	mux.HandleFunc("/push", pushFirst)
	mux.HandleFunc("/", b.serve)
	b.Server = httptest.NewServer(mux)
	t.Cleanup(b.Server.Close)
	return b
}

// pushFirst writes the 101 response and a first frame in one write, so the
// proxy's handshake read takes both.
func pushFirst(w http.ResponseWriter, r *http.Request) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	h := sha1.Sum([]byte(r.Header.Get("Sec-Websocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	c.Write(append([]byte(resp), 0x81, 5, 'h', 'e', 'l', 'l', 'o'))
	io.Copy(io.Discard, c)
}

var backendUpgrader = websocket.Upgrader{Subprotocols: []string{"chat.v2"}, CheckOrigin: func(*http.Request) bool { return true }}

func (b *WSBackend) serve(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		if b.opt.Plain != nil {
			b.opt.Plain.ServeHTTP(w, r)
			return
		}
		io.WriteString(w, "plain")
		return
	}
	if b.opt.OnUpgrade != nil {
		b.opt.OnUpgrade(r)
	}
	select {
	case b.Headers <- r:
	default:
	}
	c, err := backendUpgrader.Upgrade(w, r, http.Header{"Set-Cookie": {"sid=abc; Path=/"}, "X-Upstream": {"yes"}})
	if err != nil {
		return
	}
	defer c.Close()
	c.SetCloseHandler(func(code int, text string) error {
		select {
		case b.Closes <- CloseSeen{code, text}:
		default: // nobody is looking
		}
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		return nil
	})
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if !b.answer(c, typ, string(msg)) {
			return
		}
	}
}

// answer acts on one message; false ends the connection.
func (b *WSBackend) answer(c *websocket.Conn, typ int, s string) bool {
	switch {
	case s == "die":
		c.NetConn().Close()
		return false
	case strings.HasPrefix(s, "close:"):
		parts := strings.SplitN(s, ":", 3)
		code, _ := strconv.Atoi(parts[1])
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, parts[2]), time.Now().Add(time.Second))
	case strings.HasPrefix(s, "stream:"):
		// Big messages, spread over time.
		n, _ := strconv.Atoi(s[7:])
		for i := range n {
			c.WriteMessage(websocket.BinaryMessage, []byte(strings.Repeat(strconv.Itoa(i%10), 30000)))
			time.Sleep(time.Millisecond)
		}
	case strings.HasPrefix(s, "push:"):
		n, _ := strconv.Atoi(s[5:])
		for i := range n {
			c.WriteMessage(websocket.TextMessage, []byte("push "+strconv.Itoa(i)))
		}
	default:
		return c.WriteMessage(typ, []byte(s)) == nil
	}
	return true
}

// WaitClose returns the next close frame the backend received.
func (b *WSBackend) WaitClose(t testing.TB) CloseSeen {
	t.Helper()
	return next(t, b.Closes, "close frame")
}

// WaitHeaders returns the next upgrade request the backend received.
func (b *WSBackend) WaitHeaders(t testing.TB) *http.Request {
	t.Helper()
	return next(t, b.Headers, "upgrade request")
}

// next returns what ch delivers next, and fails t when nothing comes
// within Wait.
func next[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Wait):
		t.Fatalf("testkit: the backend saw no %s", what)
		var zero T
		return zero
	}
}

// DialWS connects a WebSocket client (d, or a default gorilla dialer) to u
// and fails the test if the handshake fails. The connection closes when the
// test ends, and its reads time out after Wait.
func DialWS(t testing.TB, d *websocket.Dialer, u string, h http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: Wait}
	}
	c, resp, err := d.Dial(u, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("testkit: dial %s: %v (status %d)", u, err, status)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(Wait))
	return c, resp
}

// ReadWS reads one message, failing the test on an error.
func ReadWS(t testing.TB, c *websocket.Conn) (int, string) {
	t.Helper()
	typ, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("testkit: read: %v", err)
	}
	return typ, string(msg)
}

// ReadClose reads until the close frame and returns it.
func ReadClose(t testing.TB, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("testkit: want a close frame, got %v", err)
		}
		return ce
	}
}

// Echo sends every message c receives back on c, until c fails: the
// upstream side of a plain WebSocket echo, for backends that serve other
// paths too.
func Echo(c *websocket.Conn) {
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(typ, msg); err != nil {
			return
		}
	}
}
