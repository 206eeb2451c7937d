package host

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/testkit"
)

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	entered := make(chan struct{})
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "finished")
	}))
	t.Cleanup(back.Close)
	px := pxStart(t, fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(px.url + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	start := time.Now()
	px.cancel()
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request during shutdown: %d %q %v", r.status, r.body, r.err)
	}
	select {
	case err := <-px.done:
		if err != nil {
			t.Fatal(err)
		}
		px.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("shutdown took %v with one 300ms request in flight", took)
	}
	if _, err := net.DialTimeout("tcp", px.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after shutdown")
	}
}

func TestShutdownClosesWebSocketsWith1001(t *testing.T) {
	back := testkit.NewWSBackend(t).Server
	px := pxStart(t, fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+px.Addr().String()+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	px.cancel()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("after shutdown the client read %v, want close 1001", err)
	}
	select {
	case err := <-px.done:
		if err != nil {
			t.Fatal(err)
		}
		px.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	recs := px.logs.records("websocket")
	if len(recs) != 1 || recs[0]["close_code"] != float64(1001) || recs[0]["messages_in"] != float64(1) ||
		recs[0]["messages_out"] != float64(1) || recs[0]["status"] != float64(101) {
		t.Errorf("websocket log records: %v", recs)
	}
}

func TestSlowlorisIsCutOff(t *testing.T) {
	b := testkit.NameBackend(t, "b")
	px := pxStart(t, fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\nread_header_timeout = \"300ms\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", b.URL), nil)
	conn, err := net.Dial("tcp", px.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, conn) // returns when the server closes
		closed <- time.Since(start)
	}()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case took := <-closed:
			if took < 250*time.Millisecond || took > 3*time.Second {
				t.Errorf("slow client cut off after %v, want about 300ms", took)
			}
			// Others are still served.
			if status, _, _ := testkit.Get(t, testkit.Client(), px.url+"/"); status != 200 {
				t.Errorf("status %d after the slow client", status)
			}
			return
		case <-tick.C:
			// One header byte at a time, never finishing the request.
			if _, err := io.WriteString(conn, "X"); err != nil {
				continue
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("a client sending headers slowly was never cut off")
			}
		}
	}
}

func TestTLSServesHTTP2AndWebSocket(t *testing.T) {
	back := testkit.NewWSBackend(t).Server
	certFile, keyFile, roots := testkit.Cert(t)
	px := pxStart(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
tls_cert = %q
tls_key = %q
[[upstream]]
name = "u"
targets = [%q]
[[route]]
upstream = "u"
`, certFile, keyFile, back.URL), nil)

	// HTTP/2 over ALPN.
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}}
	resp, err := h2.Get(px.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "plain" {
		t.Errorf("h2 request: %s %q", resp.Proto, body)
	}

	// HTTP/1.1 still works.
	h1 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err = h1.Get(px.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Errorf("h1 client got %s", resp.Proto)
	}

	// A wss upgrade on the same listener (the client offers http/1.1).
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://"+px.Addr().String()+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "over tls" {
		t.Fatalf("wss echo: %q %v", msg, err)
	}
}

func TestAdmin(t *testing.T) {
	b := newFlaky(t, "b")
	px := pxStart(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
token = "t0ken"
[[upstream]]
name = "u"
targets = [%q]
  [upstream.health]
  path = "/healthz"
  interval = "30ms"
  unhealthy_threshold = 1
  healthy_threshold = 1
[[route]]
upstream = "u"
`, b.URL), nil)
	admin := "http://" + px.AdminAddr().String()
	cl := testkit.Client()
	if status, _, _ := testkit.Get(t, cl, admin+"/healthz"); status != http.StatusUnauthorized {
		t.Errorf("healthz without token: %d", status)
	}
	if status, _, _ := testkit.Get(t, cl, admin+"/healthz", "Authorization", "Bearer wrong"); status != http.StatusUnauthorized {
		t.Errorf("healthz with a wrong token: %d", status)
	}
	if status, body, _ := testkit.Get(t, cl, admin+"/healthz", "Authorization", "Bearer t0ken"); status != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", status, body)
	}
	ready := func() (int, map[string]any) {
		status, body, _ := testkit.Get(t, cl, admin+"/readyz", "Authorization", "Bearer t0ken")
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("readyz body %q: %v", body, err)
		}
		return status, m
	}
	if status, m := ready(); status != 200 || m["ready"] != true {
		t.Errorf("readyz: %d %v", status, m)
	}
	b.healthy.Store(false)
	testkit.Eventually(t, 3*time.Second, "not ready with every target down", func() bool {
		status, m := ready()
		return status == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(m["upstreams"]), "available:0")
	})
	b.healthy.Store(true)
	testkit.Eventually(t, 3*time.Second, "ready again", func() bool { status, _ := ready(); return status == 200 })
}

// server.read_timeout and write_timeout bound HTTP exchanges, not the
// WebSockets that outlive them.
func TestWebSocketOutlivesServerTimeouts(t *testing.T) {
	back := testkit.NewWSBackend(t).Server
	px := pxStart(t, fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\nread_timeout = \"200ms\"\nwrite_timeout = \"200ms\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+px.Addr().String()+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		time.Sleep(150 * time.Millisecond)
		if err := c.WriteMessage(websocket.TextMessage, []byte("tick")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "tick" {
			t.Fatalf("message %d after %v: %q %v", i, time.Duration(i+1)*150*time.Millisecond, msg, err)
		}
	}
}

// The WebSocket handshake carries the same forwarding headers as HTTP.
func TestWebSocketHandshakeForwarding(t *testing.T) {
	got := make(chan http.Header, 1)
	up := websocket.Upgrader{}
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		got <- h
		c, err := up.Upgrade(w, r, nil)
		if err == nil {
			c.Close()
		}
	}))
	t.Cleanup(back.Close)
	px := pxStart(t, fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)
	hdr := http.Header{"X-Forwarded-For": {"203.0.113.7"}, "Cookie": {"a=b"}, "Host": {"chat.example.com"}}
	hdr.Set("X-Request-Id", "ws-id-1")
	c, _, err := websocket.DefaultDialer.Dial("ws://"+px.Addr().String()+"/ws?room=1", hdr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	h := <-got
	for k, want := range map[string]string{
		"Host": "chat.example.com", "X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": "chat.example.com", "Cookie": "a=b", "Via": "1.1 sluice",
		"X-Request-Id": "ws-id-1",
	} {
		if h.Get(k) != want {
			t.Errorf("upstream handshake %s = %q, want %q", k, h.Get(k), want)
		}
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	b := testkit.NameBackend(t, "b")
	px := pxStart(t, fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\nmax_header_bytes = \"4KiB\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", b.URL), nil)
	if status, _, _ := testkit.Get(t, testkit.Client(), px.url+"/", "X-Big", strings.Repeat("a", 2000)); status != 200 {
		t.Errorf("2000-byte header: %d", status)
	}
	if status, _, _ := testkit.Get(t, testkit.Client(), px.url+"/", "X-Big", strings.Repeat("a", 16<<10)); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16KiB header: %d, want 431", status)
	}
}
