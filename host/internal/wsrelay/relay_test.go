package wsrelay

import (
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
	"github.com/sluiceproxy/sluice/host/testkit"
)

// These tests mount Serve in a test server between a real client
// (gorilla, or the ws package through testdata/wsclient) and a real upstream
// (gorilla), all on 127.0.0.1.

// testProxy mounts Serve the way the proxy does.
type testProxy struct {
	srv   *httptest.Server
	stats chan Stats
	ctx   *SessionContext // shared by every session of the test proxy
	url   string          // ws:// base URL
}

// cancel ends every session as a shutdown does.
func (p *testProxy) cancel() { p.ctx.Cancel(nil) }

func newTestProxy(t *testing.T, target string, chain filter.Chain, opt Options) *testProxy {
	t.Helper()
	ctx := NewSessionContext()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{stats: make(chan Stats, 16), ctx: ctx}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		for _, k := range []string{"Connection", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"} {
			h.Del(k)
		}
		h.Set("X-Forwarded-For", "127.0.0.1")
		s := &filter.Session{ID: "t", Upgrade: r, ClientAddr: r.RemoteAddr}
		st, running := Serve(w, r, Params{Context: ctx, Target: tu, Header: h, Chain: chain, Session: s,
			Options: opt, Log: log, OnEnd: func(st Stats) { p.stats <- st }})
		if !running {
			p.stats <- st
		}
	}))
	p.url = "ws" + strings.TrimPrefix(p.srv.URL, "http")
	t.Cleanup(func() {
		ctx.Cancel(nil)
		p.srv.Close()
	})
	return p
}

func (p *testProxy) waitStats(t *testing.T) Stats {
	t.Helper()
	select {
	case st := <-p.stats:
		return st
	case <-time.After(testkit.Wait):
		t.Fatal("Serve did not return")
		return Stats{}
	}
}

func TestWebSocketEcho(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			chain := &testkit.Chain{Set: mode.Hooks}
			p := newTestProxy(t, up.Server.URL, chain, Options{MaxMessageSize: 1 << 20})

			// A small write buffer makes gorilla send the long message as
			// many frames: the relay must deliver it whole.
			c, _ := testkit.DialWS(t, &websocket.Dialer{WriteBufferSize: 64}, p.url+"/echo", nil)
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
				typ, got := testkit.ReadWS(t, c)
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
			if _, got := testkit.ReadWS(t, c); got != "after ping" {
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
			if got := up.WaitClose(t); got != (testkit.CloseSeen{Code: 1000, Text: "bye"}) {
				t.Fatalf("upstream saw close %+v", got)
			}
			if ce := testkit.ReadClose(t, c); ce.Code != 1000 || ce.Text != "bye" {
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
			if n := chain.Closes.Load(); n != 1 {
				t.Fatalf("OnClose ran %d times", n)
			}
			if mode.Hooks.Has(filter.HookMessage) != (chain.Calls.Load() > 0) {
				t.Fatalf("OnMessage ran %d times in %s mode", chain.Calls.Load(), mode.Name)
			}
			if chain.Overlap.Load() {
				t.Fatal("hook calls of one session overlapped")
			}
		})
	}
}

func TestWebSocketUpstreamCloses(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("close:4001:upstream bye"))
			ce := testkit.ReadClose(t, c)
			if ce.Code != 4001 || ce.Text != "upstream bye" {
				t.Fatalf("client got close %d %q", ce.Code, ce.Text)
			}
			// The client's reply goes back to the upstream.
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, ""), time.Now().Add(time.Second))
			if got := up.WaitClose(t); got.Code != 4001 {
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
	for _, mode := range testkit.Modes {
		t.Run(mode.Name+"/upstream", func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("die"))
			if ce := testkit.ReadClose(t, c); ce.Code != websocket.CloseGoingAway {
				t.Fatalf("client got close %d %q, want 1001", ce.Code, ce.Text)
			}
			st := p.waitStats(t)
			if st.CloseBy != "upstream" || st.CloseCode != websocket.CloseAbnormalClosure {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
		t.Run(mode.Name+"/client", func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			testkit.ReadWS(t, c)
			c.NetConn().Close()
			if got := up.WaitClose(t); got.Code != websocket.CloseGoingAway {
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
	for _, mode := range testkit.Modes {
		for _, frag := range []bool{false, true} {
			name := mode.Name
			if frag {
				name += "/fragmented"
			}
			t.Run(name, func(t *testing.T) {
				up := testkit.NewWSBackend(t)
				p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{MaxMessageSize: 1000})
				d := &websocket.Dialer{}
				if frag {
					d.WriteBufferSize = 200
				}
				c, _ := testkit.DialWS(t, d, p.url+"/x", nil)
				c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 1000))) // at the limit: fine
				if _, got := testkit.ReadWS(t, c); len(got) != 1000 {
					t.Fatalf("echo of %d bytes", len(got))
				}
				c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("b", 3000)))
				if ce := testkit.ReadClose(t, c); ce.Code != websocket.CloseMessageTooBig {
					t.Fatalf("client got close %d %q, want 1009", ce.Code, ce.Text)
				}
				if got := up.WaitClose(t); got.Code != websocket.CloseGoingAway {
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
	up := testkit.NewWSBackend(t)
	p := newTestProxy(t, up.Server.URL, &testkit.Chain{}, Options{HandshakeTimeout: time.Second})
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
	p := newTestProxy(t, "http://"+addr, &testkit.Chain{}, Options{HandshakeTimeout: time.Second})
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
	p = newTestProxy(t, "http://"+silent.Addr().String(), &testkit.Chain{}, Options{HandshakeTimeout: 200 * time.Millisecond})
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
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL+"/base", &testkit.Chain{Set: mode.Hooks}, Options{})
			d := &websocket.Dialer{Subprotocols: []string{"chat.v1", "chat.v2"}}
			c, resp := testkit.DialWS(t, d, p.url+"/room?x=1", http.Header{
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
			r := <-up.Headers
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
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{})
			c, _ := testkit.DialWS(t, nil, p.url+"/push", nil)
			if _, got := testkit.ReadWS(t, c); got != "hello" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// A session that a reload closes tells both sides so, rather than that the
// proxy is shutting down.
func TestWebSocketReloadCloseReason(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			testkit.ReadWS(t, c)
			p.ctx.Cancel(ErrReloaded)
			if ce := testkit.ReadClose(t, c); ce.Code != websocket.CloseGoingAway || ce.Text != "proxy reloaded" {
				t.Fatalf("client got close %d %q, want 1001 \"proxy reloaded\"", ce.Code, ce.Text)
			}
			if got := up.WaitClose(t); got.Code != websocket.CloseGoingAway {
				t.Fatalf("upstream saw close %+v", got)
			}
		})
	}
}

func TestWebSocketShutdown(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			testkit.ReadWS(t, c)
			start := time.Now()
			p.cancel()
			ce := testkit.ReadClose(t, c)
			if ce.Code != websocket.CloseGoingAway || ce.Text != "proxy shutting down" {
				t.Fatalf("client got close %d %q", ce.Code, ce.Text)
			}
			if got := up.WaitClose(t); got.Code != websocket.CloseGoingAway {
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
	for _, mode := range testkit.Modes {
		t.Run(mode.Name+"/pings", func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{PingInterval: 50 * time.Millisecond})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			var pings atomic.Int32
			c.SetPingHandler(func(s string) error {
				if s == pingPayload {
					pings.Add(1)
				}
				return c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
			})
			// Stay quiet, but answer pings, for a while: the session lives.
			go func() {
				time.Sleep(400 * time.Millisecond)
				c.WriteMessage(websocket.TextMessage, []byte("still here"))
			}()
			if _, got := testkit.ReadWS(t, c); got != "still here" {
				t.Fatalf("got %q", got)
			}
			if n := pings.Load(); n < 3 {
				t.Fatalf("%d keep-alive pings in 400ms at a 50ms interval", n)
			}
		})
		t.Run(mode.Name+"/dead-client", func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{PingInterval: 50 * time.Millisecond})
			// This client never reads, so it never answers a ping.
			testkit.DialWS(t, nil, p.url+"/x", nil)
			if got := up.WaitClose(t); got.Code != websocket.CloseGoingAway {
				t.Fatalf("upstream saw close %+v", got)
			}
			st := p.waitStats(t)
			if st.CloseBy != "client" || st.CloseCode != websocket.CloseAbnormalClosure {
				t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
			}
		})
		t.Run(mode.Name+"/idle", func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{IdleTimeout: 150 * time.Millisecond})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			start := time.Now()
			ce := testkit.ReadClose(t, c)
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

// verdictChain acts on the client's messages by their text.
func TestWebSocketVerdicts(t *testing.T) {
	up := testkit.NewWSBackend(t)
	p := newTestProxy(t, up.Server.URL, testkit.VerdictChain(), Options{})
	c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)

	c.WriteMessage(websocket.TextMessage, []byte("upper:shout"))
	if typ, got := testkit.ReadWS(t, c); typ != websocket.TextMessage || got != "SHOUT" {
		t.Fatalf("replace: got %d %q", typ, got)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte("upper:bin"))
	if typ, got := testkit.ReadWS(t, c); typ != websocket.BinaryMessage || got != "BIN" {
		t.Fatalf("replace keeps the type: got %d %q", typ, got)
	}
	c.WriteMessage(websocket.TextMessage, []byte("drop"))
	c.WriteMessage(websocket.TextMessage, []byte("after drop"))
	if _, got := testkit.ReadWS(t, c); got != "after drop" {
		t.Fatalf("drop: got %q", got)
	}
	c.WriteMessage(websocket.TextMessage, []byte("inject"))
	for _, want := range []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "to-client"}, {websocket.BinaryMessage, "to-upstream"}, {websocket.TextMessage, "inject"}} {
		if typ, got := testkit.ReadWS(t, c); typ != want.typ || got != want.data {
			t.Fatalf("inject: got %d %q, want %d %q", typ, got, want.typ, want.data)
		}
	}
	c.WriteMessage(websocket.TextMessage, []byte("close"))
	if ce := testkit.ReadClose(t, c); ce.Code != 4000 || ce.Text != "filter said no" {
		t.Fatalf("client got close %d %q", ce.Code, ce.Text)
	}
	if got := up.WaitClose(t); got != (testkit.CloseSeen{Code: 4000, Text: "filter said no"}) {
		t.Fatalf("upstream saw close %+v", got)
	}
	st := p.waitStats(t)
	if st.CloseBy != "proxy" || st.CloseCode != 4000 {
		t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
	}
}

func TestWebSocketFilterPanics(t *testing.T) {
	up := testkit.NewWSBackend(t)
	p := newTestProxy(t, up.Server.URL, testkit.VerdictChain(), Options{})
	c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
	c.WriteMessage(websocket.TextMessage, []byte("panic"))
	if ce := testkit.ReadClose(t, c); ce.Code != websocket.CloseInternalServerErr {
		t.Fatalf("client got close %d %q, want 1011", ce.Code, ce.Text)
	}
	if st := p.waitStats(t); st.CloseBy != "proxy" || st.CloseCode != websocket.CloseInternalServerErr {
		t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
	}
}

// TestWebSocketRawManyMessages pushes enough messages through raw mode that
// reads end inside frames and frame headers, and checks the count.
func TestWebSocketRawManyMessages(t *testing.T) {
	up := testkit.NewWSBackend(t)
	p := newTestProxy(t, up.Server.URL, &testkit.Chain{}, Options{MaxMessageSize: 1 << 20})
	c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
	const n = 2000
	c.WriteMessage(websocket.TextMessage, []byte("push:"+strconv.Itoa(n)))
	for i := range n {
		if _, got := testkit.ReadWS(t, c); got != "push "+strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	testkit.ReadClose(t, c)
	st := p.waitStats(t)
	if st.Messages[filter.UpstreamToClient] != n || st.Messages[filter.ClientToUpstream] != 1 {
		t.Fatalf("messages %v", st.Messages)
	}
}

// TestWebSocketRawPingsBetweenFrames has the relay ping a client while big
// messages stream to it, in raw mode: the pings must land between frames.
func TestWebSocketRawPingsBetweenFrames(t *testing.T) {
	up := testkit.NewWSBackend(t)
	p := newTestProxy(t, up.Server.URL, &testkit.Chain{}, Options{PingInterval: 20 * time.Millisecond})
	c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
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
		if _, got := testkit.ReadWS(t, c); got != strings.Repeat(strconv.Itoa(i%10), 30000) {
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
	stream = append(stream, controlFrame(websocket.CloseMessage, websocket.FormatCloseMessage(4002, "x"), true)...)
	var tr frameTracker
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
