package host

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
)

// These tests mount serveWebSocket in a test server between a real client
// (gorilla, or the ws package through testdata/wsclient) and a real upstream
// (gorilla), all on 127.0.0.1.

const wsTestWait = 5 * time.Second

// wsTestChain is a Chain written in Go: the hooks it declares and an optional
// message hook.
type wsTestChain struct {
	hooks     filter.HookSet
	onMessage func(*filter.Session, *filter.Message) filter.MessageVerdict
	closes    atomic.Int32
	calls     atomic.Int32
	inHook    atomic.Int32
	overlap   atomic.Bool
}

func (c *wsTestChain) Hooks() filter.HookSet                            { return c.hooks }
func (c *wsTestChain) OnRequestHeaders(*filter.Exchange) *filter.Reply  { return nil }
func (c *wsTestChain) OnUpgrade(*filter.Exchange) *filter.Reply         { return nil }
func (c *wsTestChain) OnResponseHeaders(*filter.Exchange) *filter.Reply { return nil }
func (c *wsTestChain) OnClose(*filter.Session)                          { c.closes.Add(1) }

func (c *wsTestChain) OnMessage(s *filter.Session, m *filter.Message) filter.MessageVerdict {
	if c.inHook.Add(1) > 1 {
		c.overlap.Store(true)
	}
	defer c.inHook.Add(-1)
	c.calls.Add(1)
	if c.onMessage == nil {
		return filter.MessageVerdict{}
	}
	return c.onMessage(s, m)
}

var _ filter.Chain = (*wsTestChain)(nil)

// wsModes are the two relay modes: a chain without a message hook relays raw
// bytes, one with it relays message by message.
var wsModes = []struct {
	name  string
	hooks filter.HookSet
}{
	{"raw", filter.HookClose},
	{"message", filter.HookMessage | filter.HookClose},
}

// wsCloseSeen is a close frame an upstream received.
type wsCloseSeen struct {
	code int
	text string
}

// wsTestUpstream is a gorilla WebSocket server with a few behaviours chosen
// by path.
type wsTestUpstream struct {
	srv     *httptest.Server
	closes  chan wsCloseSeen
	headers chan *http.Request
}

func newWSTestUpstream(t *testing.T) *wsTestUpstream {
	t.Helper()
	u := &wsTestUpstream{closes: make(chan wsCloseSeen, 8), headers: make(chan *http.Request, 8)}
	up := websocket.Upgrader{Subprotocols: []string{"chat.v2"}, CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/refuse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reason", "nope")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, strings.Repeat("denied ", 400))
	})
	mux.HandleFunc("/push", func(w http.ResponseWriter, r *http.Request) {
		// The 101 response and a first frame in one write, so the proxy's
		// handshake read takes both.
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
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case u.headers <- r:
		default:
		}
		c, err := up.Upgrade(w, r, http.Header{"Set-Cookie": {"sid=abc; Path=/"}, "X-Upstream": {"yes"}})
		if err != nil {
			return
		}
		defer c.Close()
		c.SetCloseHandler(func(code int, text string) error {
			u.closes <- wsCloseSeen{code, text}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
			return nil
		})
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			s := string(msg)
			switch {
			case s == "die":
				c.NetConn().Close()
				return
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
				if err := c.WriteMessage(typ, msg); err != nil {
					return
				}
			}
		}
	})
	u.srv = httptest.NewServer(mux)
	t.Cleanup(u.srv.Close)
	return u
}

// wsTestProxy mounts serveWebSocket the way the proxy does.
type wsTestProxy struct {
	srv    *httptest.Server
	stats  chan wsStats
	cancel context.CancelFunc
	url    string // ws:// base URL
}

func newWSTestProxy(t *testing.T, target string, chain filter.Chain, opt wsOptions) *wsTestProxy {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &wsTestProxy{stats: make(chan wsStats, 16), cancel: cancel}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		for _, k := range []string{"Connection", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"} {
			h.Del(k)
		}
		h.Set("X-Forwarded-For", "127.0.0.1")
		s := &filter.Session{ID: "t", Upgrade: r, ClientAddr: r.RemoteAddr}
		st, running := serveWebSocket(ctx, w, r, tu, h, func() filter.Chain { return chain }, s, opt, log, func(st wsStats) { p.stats <- st })
		if !running {
			p.stats <- st
		}
	}))
	p.url = "ws" + strings.TrimPrefix(p.srv.URL, "http")
	t.Cleanup(func() {
		cancel()
		p.srv.Close()
	})
	return p
}

func (p *wsTestProxy) waitStats(t *testing.T) wsStats {
	t.Helper()
	select {
	case st := <-p.stats:
		return st
	case <-time.After(wsTestWait):
		t.Fatal("serveWebSocket did not return")
		return wsStats{}
	}
}

func wsDial(t *testing.T, d *websocket.Dialer, u string, h http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: wsTestWait}
	}
	c, resp, err := d.Dial(u, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", u, err, status)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(wsTestWait))
	return c, resp
}

func wsRead(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	typ, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(msg)
}

// wsReadClose reads until the close frame and returns it.
func wsReadClose(t *testing.T, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("want a close frame, got %v", err)
		}
		return ce
	}
}

func (u *wsTestUpstream) waitClose(t *testing.T) wsCloseSeen {
	t.Helper()
	select {
	case c := <-u.closes:
		return c
	case <-time.After(wsTestWait):
		t.Fatal("upstream saw no close frame")
		return wsCloseSeen{}
	}
}

func TestWebSocketEcho(t *testing.T) {
	for _, mode := range wsModes {
		t.Run(mode.name, func(t *testing.T) {
			up := newWSTestUpstream(t)
			chain := &wsTestChain{hooks: mode.hooks}
			p := newWSTestProxy(t, up.srv.URL, chain, wsOptions{MaxMessageSize: 1 << 20})

			// A small write buffer makes gorilla send the long message as
			// many frames: the relay must deliver it whole.
			c, _ := wsDial(t, &websocket.Dialer{WriteBufferSize: 64}, p.url+"/echo", nil)
			long := strings.Repeat("fragmented ", 500)
			cases := []struct {
				typ  int
				data string
			}{
				{websocket.TextMessage, "hello"},
				{websocket.BinaryMessage, "\x00\x01\x02\xff"},
				{websocket.TextMessage, long},
				{websocket.TextMessage, ""},
			}
			for _, tc := range cases {
				if err := c.WriteMessage(tc.typ, []byte(tc.data)); err != nil {
					t.Fatal(err)
				}
				typ, got := wsRead(t, c)
				if typ != tc.typ || got != tc.data {
					t.Fatalf("echo: got type %d %.40q, want type %d %.40q", typ, got, tc.typ, tc.data)
				}
			}

			// Ping and pong go end to end: the pong carries the upstream's
			// answer to our payload.
			pong := make(chan string, 1)
			c.SetPongHandler(func(s string) error { pong <- s; return nil })
			c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second))
			c.WriteMessage(websocket.TextMessage, []byte("after ping"))
			if _, got := wsRead(t, c); got != "after ping" {
				t.Fatalf("got %q", got)
			}
			select {
			case s := <-pong:
				if s != "are you there" {
					t.Fatalf("pong %q", s)
				}
			default:
				t.Fatal("no pong before the next message")
			}

			// The client closes with a code and reason: the upstream sees
			// both, and its reply reaches the client.
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second))
			if got := up.waitClose(t); got != (wsCloseSeen{1000, "bye"}) {
				t.Fatalf("upstream saw close %+v", got)
			}
			if ce := wsReadClose(t, c); ce.Code != 1000 || ce.Text != "bye" {
				t.Fatalf("client got close reply %d %q", ce.Code, ce.Text)
			}
			c.Close()

			st := p.waitStats(t)
			if st.Status != 101 || st.DialErr != nil {
				t.Fatalf("stats %+v", st)
			}
			if st.CloseBy != "client" || st.CloseCode != 1000 {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
			if want := int64(len(cases) + 1); st.Messages[filter.ClientToUpstream] != want || st.Messages[filter.UpstreamToClient] != want {
				t.Fatalf("messages %v, want %d each way", st.Messages, want)
			}
			if st.Bytes[filter.ClientToUpstream] < int64(len(long)) || st.Bytes[filter.UpstreamToClient] < int64(len(long)) {
				t.Fatalf("bytes %v", st.Bytes)
			}
			if n := chain.closes.Load(); n != 1 {
				t.Fatalf("OnClose ran %d times", n)
			}
			if mode.hooks.Has(filter.HookMessage) != (chain.calls.Load() > 0) {
				t.Fatalf("OnMessage ran %d times in %s mode", chain.calls.Load(), mode.name)
			}
			if chain.overlap.Load() {
				t.Fatal("hook calls of one session overlapped")
			}
		})
	}
}

func TestWebSocketUpstreamCloses(t *testing.T) {
	for _, mode := range wsModes {
		t.Run(mode.name, func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{})
			c, _ := wsDial(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("close:4001:upstream bye"))
			ce := wsReadClose(t, c)
			if ce.Code != 4001 || ce.Text != "upstream bye" {
				t.Fatalf("client got close %d %q", ce.Code, ce.Text)
			}
			// The client's reply goes back to the upstream.
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, ""), time.Now().Add(time.Second))
			if got := up.waitClose(t); got.code != 4001 {
				t.Fatalf("upstream saw reply %+v", got)
			}
			st := p.waitStats(t)
			if st.CloseBy != "upstream" || st.CloseCode != 4001 {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
	}
}

func TestWebSocketPeerDisappears(t *testing.T) {
	for _, mode := range wsModes {
		t.Run(mode.name+"/upstream", func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{})
			c, _ := wsDial(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("die"))
			if ce := wsReadClose(t, c); ce.Code != websocket.CloseGoingAway {
				t.Fatalf("client got close %d %q, want 1001", ce.Code, ce.Text)
			}
			st := p.waitStats(t)
			if st.CloseBy != "upstream" || st.CloseCode != websocket.CloseAbnormalClosure {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
		t.Run(mode.name+"/client", func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{})
			c, _ := wsDial(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			wsRead(t, c)
			c.NetConn().Close()
			if got := up.waitClose(t); got.code != websocket.CloseGoingAway {
				t.Fatalf("upstream saw close %+v, want 1001", got)
			}
			st := p.waitStats(t)
			if st.CloseBy != "client" || st.CloseCode != websocket.CloseAbnormalClosure {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
	}
}

func TestWebSocketMessageTooBig(t *testing.T) {
	for _, mode := range wsModes {
		for _, frag := range []bool{false, true} {
			name := mode.name
			if frag {
				name += "/fragmented"
			}
			t.Run(name, func(t *testing.T) {
				up := newWSTestUpstream(t)
				p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{MaxMessageSize: 1000})
				d := &websocket.Dialer{}
				if frag {
					d.WriteBufferSize = 200
				}
				c, _ := wsDial(t, d, p.url+"/x", nil)
				c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 1000))) // at the limit: fine
				if _, got := wsRead(t, c); len(got) != 1000 {
					t.Fatalf("echo of %d bytes", len(got))
				}
				c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("b", 3000)))
				if ce := wsReadClose(t, c); ce.Code != websocket.CloseMessageTooBig {
					t.Fatalf("client got close %d %q, want 1009", ce.Code, ce.Text)
				}
				if got := up.waitClose(t); got.code != websocket.CloseGoingAway {
					t.Fatalf("upstream saw close %+v, want 1001", got)
				}
				st := p.waitStats(t)
				if st.CloseBy != "proxy" || st.CloseCode != websocket.CloseMessageTooBig {
					t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
				}
			})
		}
	}
}

func TestWebSocketRefusedHandshake(t *testing.T) {
	up := newWSTestUpstream(t)
	p := newWSTestProxy(t, up.srv.URL, &wsTestChain{}, wsOptions{HandshakeTimeout: time.Second})
	req, _ := http.NewRequest("GET", p.srv.URL+"/refuse", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Reason") != "nope" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	if want := strings.Repeat("denied ", 400); string(body) != want {
		t.Fatalf("body of %d bytes, want the upstream's %d", len(body), len(want))
	}
	st := p.waitStats(t)
	if st.Status != 403 || st.DialErr != nil {
		t.Fatalf("stats %+v", st)
	}
}

func TestWebSocketUnreachable(t *testing.T) {
	// A port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p := newWSTestProxy(t, "http://"+addr, &wsTestChain{}, wsOptions{HandshakeTimeout: time.Second})
	_, resp, err := websocket.DefaultDialer.Dial(p.url+"/x", nil)
	if err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("got %v %v", resp, err)
	}
	if st := p.waitStats(t); st.DialErr == nil || st.Status != 502 {
		t.Fatalf("stats %+v", st)
	}

	// An upstream that accepts and never answers: 504 after HandshakeTimeout.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p = newWSTestProxy(t, "http://"+silent.Addr().String(), &wsTestChain{}, wsOptions{HandshakeTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, resp, err = websocket.DefaultDialer.Dial(p.url+"/x", nil)
	if err == nil || resp == nil || resp.StatusCode != 504 {
		t.Fatalf("got %v %v", resp, err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("504 took %v", el)
	}
	if st := p.waitStats(t); st.DialErr == nil || st.Status != 504 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWebSocketHandshakeHeaders(t *testing.T) {
	for _, mode := range wsModes {
		t.Run(mode.name, func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL+"/base", &wsTestChain{hooks: mode.hooks}, wsOptions{})
			d := &websocket.Dialer{Subprotocols: []string{"chat.v1", "chat.v2"}}
			c, resp := wsDial(t, d, p.url+"/room?x=1", http.Header{
				"Origin": {"http://elsewhere.example"}, "Cookie": {"a=b"}, "X-Custom": {"42"},
			})
			if c.Subprotocol() != "chat.v2" {
				t.Fatalf("subprotocol %q", c.Subprotocol())
			}
			if got := resp.Header.Get("Set-Cookie"); got != "sid=abc; Path=/" {
				t.Fatalf("Set-Cookie %q", got)
			}
			if resp.Header.Get("X-Upstream") != "yes" {
				t.Fatalf("upstream header lost: %v", resp.Header)
			}
			r := <-up.headers
			if r.URL.Path != "/base/room" || r.URL.RawQuery != "x=1" {
				t.Fatalf("upstream request %s", r.URL)
			}
			for k, want := range map[string]string{
				"Origin": "http://elsewhere.example", "Cookie": "a=b", "X-Custom": "42",
				"X-Forwarded-For": "127.0.0.1", "Sec-Websocket-Protocol": "chat.v1, chat.v2",
			} {
				if got := r.Header.Get(k); got != want {
					t.Errorf("upstream saw %s %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestWebSocketFramesRightAfterHandshake(t *testing.T) {
	for _, mode := range wsModes {
		t.Run(mode.name, func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{})
			c, _ := wsDial(t, nil, p.url+"/push", nil)
			if _, got := wsRead(t, c); got != "hello" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestWebSocketShutdown(t *testing.T) {
	for _, mode := range wsModes {
		t.Run(mode.name, func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{})
			c, _ := wsDial(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			wsRead(t, c)
			start := time.Now()
			p.cancel()
			ce := wsReadClose(t, c)
			if ce.Code != websocket.CloseGoingAway || ce.Text != "proxy shutting down" {
				t.Fatalf("client got close %d %q", ce.Code, ce.Text)
			}
			if got := up.waitClose(t); got.code != websocket.CloseGoingAway {
				t.Fatalf("upstream saw close %+v", got)
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1001, ""), time.Now().Add(time.Second))
			st := p.waitStats(t)
			if el := time.Since(start); el > time.Second {
				t.Fatalf("shutdown took %v", el)
			}
			if st.CloseBy != "proxy" || st.CloseCode != websocket.CloseGoingAway {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
	}
}

func TestWebSocketKeepalive(t *testing.T) {
	for _, mode := range wsModes {
		t.Run(mode.name+"/pings", func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{PingInterval: 50 * time.Millisecond})
			c, _ := wsDial(t, nil, p.url+"/x", nil)
			var pings atomic.Int32
			c.SetPingHandler(func(s string) error {
				if s == wsPingPayload {
					pings.Add(1)
				}
				return c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
			})
			// Stay quiet, but answer pings, for a while: the session lives.
			go func() {
				time.Sleep(400 * time.Millisecond)
				c.WriteMessage(websocket.TextMessage, []byte("still here"))
			}()
			if _, got := wsRead(t, c); got != "still here" {
				t.Fatalf("got %q", got)
			}
			if n := pings.Load(); n < 3 {
				t.Fatalf("%d keep-alive pings in 400ms at a 50ms interval", n)
			}
		})
		t.Run(mode.name+"/dead-client", func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{PingInterval: 50 * time.Millisecond})
			// This client never reads, so it never answers a ping.
			wsDial(t, nil, p.url+"/x", nil)
			if got := up.waitClose(t); got.code != websocket.CloseGoingAway {
				t.Fatalf("upstream saw close %+v", got)
			}
			st := p.waitStats(t)
			if st.CloseBy != "client" || st.CloseCode != websocket.CloseAbnormalClosure {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
		t.Run(mode.name+"/idle", func(t *testing.T) {
			up := newWSTestUpstream(t)
			p := newWSTestProxy(t, up.srv.URL, &wsTestChain{hooks: mode.hooks}, wsOptions{IdleTimeout: 150 * time.Millisecond})
			c, _ := wsDial(t, nil, p.url+"/x", nil)
			start := time.Now()
			ce := wsReadClose(t, c)
			if ce.Code != websocket.CloseGoingAway || ce.Text != "idle timeout" {
				t.Fatalf("client got close %d %q", ce.Code, ce.Text)
			}
			if el := time.Since(start); el < 100*time.Millisecond {
				t.Fatalf("idle close after %v", el)
			}
			if st := p.waitStats(t); st.CloseBy != "proxy" || st.CloseCode != websocket.CloseGoingAway {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
	}
}

// wsVerdictChain acts on the client's messages by their text.
func wsVerdictChain() *wsTestChain {
	return &wsTestChain{hooks: filter.HookMessage, onMessage: func(s *filter.Session, m *filter.Message) filter.MessageVerdict {
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
	}}
}

func TestWebSocketVerdicts(t *testing.T) {
	up := newWSTestUpstream(t)
	p := newWSTestProxy(t, up.srv.URL, wsVerdictChain(), wsOptions{})
	c, _ := wsDial(t, nil, p.url+"/x", nil)

	c.WriteMessage(websocket.TextMessage, []byte("upper:shout"))
	if typ, got := wsRead(t, c); typ != websocket.TextMessage || got != "SHOUT" {
		t.Fatalf("replace: got %d %q", typ, got)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte("upper:bin"))
	if typ, got := wsRead(t, c); typ != websocket.BinaryMessage || got != "BIN" {
		t.Fatalf("replace keeps the type: got %d %q", typ, got)
	}
	c.WriteMessage(websocket.TextMessage, []byte("drop"))
	c.WriteMessage(websocket.TextMessage, []byte("after drop"))
	if _, got := wsRead(t, c); got != "after drop" {
		t.Fatalf("drop: got %q", got)
	}
	c.WriteMessage(websocket.TextMessage, []byte("inject"))
	for _, want := range []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "to-client"}, {websocket.BinaryMessage, "to-upstream"}, {websocket.TextMessage, "inject"}} {
		if typ, got := wsRead(t, c); typ != want.typ || got != want.data {
			t.Fatalf("inject: got %d %q, want %d %q", typ, got, want.typ, want.data)
		}
	}
	c.WriteMessage(websocket.TextMessage, []byte("close"))
	if ce := wsReadClose(t, c); ce.Code != 4000 || ce.Text != "filter said no" {
		t.Fatalf("client got close %d %q", ce.Code, ce.Text)
	}
	if got := up.waitClose(t); got != (wsCloseSeen{4000, "filter said no"}) {
		t.Fatalf("upstream saw close %+v", got)
	}
	st := p.waitStats(t)
	if st.CloseBy != "proxy" || st.CloseCode != 4000 {
		t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
	}
}

func TestWebSocketFilterPanics(t *testing.T) {
	up := newWSTestUpstream(t)
	p := newWSTestProxy(t, up.srv.URL, wsVerdictChain(), wsOptions{})
	c, _ := wsDial(t, nil, p.url+"/x", nil)
	c.WriteMessage(websocket.TextMessage, []byte("panic"))
	if ce := wsReadClose(t, c); ce.Code != websocket.CloseInternalServerErr {
		t.Fatalf("client got close %d %q, want 1011", ce.Code, ce.Text)
	}
	if st := p.waitStats(t); st.CloseBy != "proxy" || st.CloseCode != websocket.CloseInternalServerErr {
		t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
	}
}

// TestWebSocketRawManyMessages pushes enough messages through raw mode that
// reads end inside frames and frame headers, and checks the count.
func TestWebSocketRawManyMessages(t *testing.T) {
	up := newWSTestUpstream(t)
	p := newWSTestProxy(t, up.srv.URL, &wsTestChain{}, wsOptions{MaxMessageSize: 1 << 20})
	c, _ := wsDial(t, nil, p.url+"/x", nil)
	const n = 2000
	c.WriteMessage(websocket.TextMessage, []byte("push:"+strconv.Itoa(n)))
	for i := range n {
		if _, got := wsRead(t, c); got != "push "+strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	wsReadClose(t, c)
	st := p.waitStats(t)
	if st.Messages[filter.UpstreamToClient] != n || st.Messages[filter.ClientToUpstream] != 1 {
		t.Fatalf("messages %v", st.Messages)
	}
}

// TestWebSocketRawPingsBetweenFrames has the relay ping a client while big
// messages stream to it, in raw mode: the pings must land between frames.
func TestWebSocketRawPingsBetweenFrames(t *testing.T) {
	up := newWSTestUpstream(t)
	p := newWSTestProxy(t, up.srv.URL, &wsTestChain{}, wsOptions{PingInterval: 20 * time.Millisecond})
	c, _ := wsDial(t, nil, p.url+"/x", nil)
	var pings atomic.Int32
	c.SetPingHandler(func(s string) error {
		pings.Add(1)
		return c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	// The client stays silent while the upstream streams to it, so the relay
	// pings it in the middle of the stream.
	const n = 200
	c.WriteMessage(websocket.TextMessage, []byte("stream:"+strconv.Itoa(n)))
	for i := range n {
		if _, got := wsRead(t, c); got != strings.Repeat(strconv.Itoa(i%10), 30000) {
			t.Fatalf("message %d corrupted", i)
		}
	}
	if pings.Load() < 2 {
		t.Fatalf("%d pings", pings.Load())
	}
}

func TestWSFrameTracker(t *testing.T) {
	// Two masked frames and a close frame, fed one byte at a time.
	var stream []byte
	stream = append(stream, 0x01, 0x80|3, 1, 2, 3, 4, 'a'^1, 'b'^2, 'c'^3) // text, not final
	stream = append(stream, 0x80, 0x80|1, 0, 0, 0, 0, 'd')                 // final continuation
	stream = append(stream, wsControlFrame(websocket.CloseMessage, websocket.FormatCloseMessage(4002, "x"), true)...)
	var tr wsFrameTracker
	var msgs int64
	var code int
	for i := range stream {
		ev := tr.feed(stream[i : i+1])
		msgs += ev.msgs
		if ev.closed {
			code = ev.code
		}
		if i == 8 && !tr.atBoundary() {
			t.Fatal("not at a boundary after the first frame")
		}
		if i == 3 && tr.atBoundary() {
			t.Fatal("at a boundary inside a header")
		}
	}
	if msgs != 1 || code != 4002 || !tr.atBoundary() {
		t.Fatalf("msgs %d code %d boundary %v", msgs, code, tr.atBoundary())
	}
}
