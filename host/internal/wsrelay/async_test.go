package wsrelay

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// goroutinesSettle waits until the number of goroutines stops changing
// (sessions settling, servers' connection goroutines starting) and returns
// it.
func goroutinesSettle() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// TestWebSocketRelayGoroutines counts what a session costs in goroutines
// once it runs: net/http's handler goroutine is gone in both testkit.Modes (the
// handler returned after the handshakes); message mode keeps one reader per
// side; raw mode keeps none once both directions have been idle for
// idlePark, and a message then still goes through, both ways.
func TestWebSocketRelayGoroutines(t *testing.T) {
	for _, mode := range []struct {
		name  string
		hooks filter.HookSet
		want  int
	}{
		{"raw", filter.HookClose, 0},
		{"message", filter.HookMessage | filter.HookClose, 2},
	} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.want == 0 && !canPark {
				t.Skip("idle raw directions keep their goroutines without epoll")
			}
			idleParker.start() // its one goroutine serves every session
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.hooks}, Options{})

			// The same client straight to the upstream: what the client
			// and the upstream cost alone.
			g0 := goroutinesSettle()
			direct, _ := testkit.DialWS(t, nil, "ws"+up.Server.URL[len("http"):]+"/x", nil)
			direct.WriteMessage(websocket.TextMessage, []byte("hi"))
			testkit.ReadWS(t, direct)
			alone := goroutinesSettle() - g0
			direct.Close()

			g1 := goroutinesSettle()
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			testkit.ReadWS(t, c)
			time.Sleep(idlePark + 200*time.Millisecond)
			if got := goroutinesSettle() - g1 - alone; got != mode.want {
				t.Fatalf("an idle session runs %d goroutines in the relay, want %d", got, mode.want)
			}

			// Idle, then traffic again: the relay wakes up and keeps order.
			for i := range 3 {
				c.WriteMessage(websocket.TextMessage, []byte("again "+strconv.Itoa(i)))
			}
			for i := range 3 {
				if _, got := testkit.ReadWS(t, c); got != "again "+strconv.Itoa(i) {
					t.Fatalf("after idle: got %q", got)
				}
			}
			c.WriteMessage(websocket.TextMessage, []byte("push:3"))
			for i := range 3 {
				if _, got := testkit.ReadWS(t, c); got != "push "+strconv.Itoa(i) {
					t.Fatalf("after idle, from the upstream: got %q", got)
				}
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			testkit.ReadClose(t, c)
			st := p.waitStats(t)
			if st.CloseBy != "client" || st.CloseCode != 1000 || st.Messages[filter.ClientToUpstream] != 5 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestWebSocketShutdownWhileIdle cancels the proxy's context while a raw
// session has no goroutine (both directions idle): both sides still get 1001
// at once, and the relay reports the session's end.
func TestWebSocketShutdownWhileIdle(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			up := testkit.NewWSBackend(t)
			p := newTestProxy(t, up.Server.URL, &testkit.Chain{Set: mode.Hooks}, Options{})
			c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			testkit.ReadWS(t, c)
			time.Sleep(idlePark + 200*time.Millisecond)
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

// TestWebSocketIdleClientGoesAway drops an idle raw session's client
// without a close frame: the parked direction wakes up on the hang-up and
// the upstream hears 1001.
func TestWebSocketIdleClientGoesAway(t *testing.T) {
	up := testkit.NewWSBackend(t)
	p := newTestProxy(t, up.Server.URL, &testkit.Chain{}, Options{})
	c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
	c.WriteMessage(websocket.TextMessage, []byte("hi"))
	testkit.ReadWS(t, c)
	time.Sleep(idlePark + 200*time.Millisecond)
	c.NetConn().Close()
	if got := up.WaitClose(t); got.Code != websocket.CloseGoingAway || got.Text != "client went away" {
		t.Fatalf("upstream saw close %+v", got)
	}
	if st := p.waitStats(t); st.CloseBy != "client" || st.CloseCode != websocket.CloseAbnormalClosure {
		t.Fatalf("close recorded as %q %d", st.CloseBy, st.CloseCode)
	}
}

// TestWebSocketMessageBatching sends a burst of messages of mixed sizes in
// message mode, without waiting for answers, so that the relay batches
// several per write; every message must come back whole and in order. A
// lone message afterwards must come back at once, not wait for a batch.
func TestWebSocketMessageBatching(t *testing.T) {
	up := testkit.NewWSBackend(t)
	chain := &testkit.Chain{Set: filter.HookMessage}
	p := newTestProxy(t, up.Server.URL, chain, Options{MaxMessageSize: 1 << 20})
	c, _ := testkit.DialWS(t, nil, p.url+"/x", nil)
	const n = 1500
	sizes := []int{1, 60, 125, 126, 700, 4000, 16 << 10, 16<<10 + 1, 70000}
	msg := func(i int) []byte {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, sizes[i%len(sizes)])
		copy(b, strconv.Itoa(i))
		return b
	}
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			typ := websocket.BinaryMessage
			if i%2 == 0 {
				typ = websocket.TextMessage
			}
			if err := c.WriteMessage(typ, msg(i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		c.SetReadDeadline(time.Now().Add(testkit.Wait))
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, msg(i)) || (typ == websocket.TextMessage) != (i%2 == 0) {
			t.Fatalf("message %d: type %d, %d bytes, starts %q", i, typ, len(got), got[:min(len(got), 8)])
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	for i := range 20 {
		start := time.Now()
		c.WriteMessage(websocket.TextMessage, []byte("one"))
		if _, got := testkit.ReadWS(t, c); got != "one" {
			t.Fatalf("got %q", got)
		}
		// Generous for a loaded machine; a message stuck in a batch waits
		// for the test's read deadline instead.
		if el := time.Since(start); el > time.Second {
			t.Fatalf("round trip %d took %v", i, el)
		}
	}
	if got := chain.Calls.Load(); got != 2*(n+20) {
		t.Fatalf("%d hook calls, want %d", got, 2*(n+20))
	}
}

// TestWSSessionCtx checks the session context against what context.AfterFunc
// and context.WithCancel expect of a context.
func TestWSSessionCtx(t *testing.T) {
	c := NewSessionContext()
	ran := make(chan string, 4)
	context.AfterFunc(c, func() { ran <- "a" })
	stopB := context.AfterFunc(c, func() { ran <- "b" })
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	if !stopB() || stopB() {
		t.Fatal("stop: want true once, then false")
	}
	if c.Err() != nil {
		t.Fatal("Err before cancel")
	}
	c.Cancel(ErrReloaded)
	c.Cancel(nil)
	select {
	case <-c.Done():
	case <-time.After(testkit.Wait):
		t.Fatal("Done not closed")
	}
	select {
	case <-child.Done():
	case <-time.After(testkit.Wait):
		t.Fatal("child not cancelled")
	}
	if got := <-ran; got != "a" {
		t.Fatalf("ran %q", got)
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err %v", c.Err())
	}
	context.AfterFunc(c, func() { ran <- "late" })
	if got := <-ran; got != "late" {
		t.Fatalf("ran %q", got)
	}
	select {
	case got := <-ran:
		t.Fatalf("also ran %q", got)
	case <-time.After(50 * time.Millisecond):
	}
}
