//go:build !wasip1

package sluice_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sluice "github.com/sluiceproxy/sluice/sdk/go"
	"github.com/sluiceproxy/sluice/sdk/go/sluicetest"
)

// reset clears every handler, so each test registers only what it uses.
func reset() {
	sluice.OnConfigure(nil)
	sluice.OnRequestHeaders(nil)
	sluice.OnResponseHeaders(nil)
	sluice.OnUpgrade(nil)
	sluice.OnMessage(nil)
	sluice.OnClose(nil)
}

func TestHooksReportOnlyRegisteredHandlers(t *testing.T) {
	reset()
	sluice.OnRequestHeaders(func(sluice.Request) sluice.Action { return sluice.Continue })
	h := sluicetest.New()
	if err := h.Configure(); err != nil {
		t.Fatal(err)
	}
	for hook, want := range map[sluicetest.Hook]bool{
		sluicetest.HookRequestHeaders:  true,
		sluicetest.HookResponseHeaders: false,
		sluicetest.HookUpgrade:         false,
		sluicetest.HookMessage:         false,
		sluicetest.HookClose:           false,
	} {
		if got := h.Handles(hook); got != want {
			t.Errorf("Handles(%d) = %v, want %v", hook, got, want)
		}
	}
}

func TestConfigure(t *testing.T) {
	reset()
	var got string
	sluice.OnConfigure(func(cfg []byte) error {
		got = string(cfg)
		if bytes.Contains(cfg, []byte("bad")) {
			return errors.New("bad config")
		}
		return nil
	})
	h := sluicetest.New()
	h.Config = `{"k":"` + strings.Repeat("v", 5000) + `"}`
	if err := h.Configure(); err != nil {
		t.Fatal(err)
	}
	if got != h.Config || string(sluice.Config()) != h.Config {
		t.Fatalf("config: handler saw %d bytes, Config() %d, want %d", len(got), len(sluice.Config()), len(h.Config))
	}

	h = sluicetest.New()
	h.Config = `{"bad":true}`
	err := h.Configure()
	if err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("Configure() = %v, want the filter's error", err)
	}
}

func TestRequestAccessors(t *testing.T) {
	reset()
	long := strings.Repeat("x", 3000) // larger than the initial scratch buffer
	type seen struct {
		method, path, query, get, long, missing string
		has, hasEmpty                           bool
		values, names                           []string
		addr, route, id                         string
	}
	var s seen
	sluice.OnRequestHeaders(func(req sluice.Request) sluice.Action {
		hd := req.Header()
		s = seen{
			method: req.Method(), path: req.Path(), query: req.Query(),
			get: hd.Get("accept"), long: hd.Get("X-Long"), missing: hd.Get("X-Missing"),
			has: hd.Has("X-Long"), values: hd.Values("X-Multi"), names: hd.Names(),
			addr: req.ClientAddr(), route: req.Route(), id: req.ID(),
		}
		_, s.hasEmpty = hd.Lookup("X-Empty")
		if b, ok := hd.AppendValue([]byte("prefix:"), "X-Multi"); !ok || string(b) != "prefix:a" {
			t.Errorf("AppendValue = %q %v", b, ok)
		}
		if b, ok := hd.AppendValue(nil, "X-Missing"); ok || b != nil {
			t.Errorf("AppendValue of an absent header = %q %v", b, ok)
		}
		req.SetMethod("POST")
		req.SetPath("/rewritten")
		req.SetQuery("a=1")
		hd.Set("X-Set", "1")
		hd.Add("X-Multi", "c")
		hd.Remove("X-Long")
		return sluice.Continue
	})
	h := sluicetest.New()
	h.Method, h.Path, h.Query = "GET", "/p", "q=1"
	h.RequestHeader.Set("Accept", "text/html")
	h.RequestHeader.Set("X-Long", long)
	h.RequestHeader["X-Empty"] = []string{""}
	h.RequestHeader["X-Multi"] = []string{"a", "b"}
	if r := h.RequestHeaders(); r != nil {
		t.Fatalf("reply %+v, want continue", r)
	}
	if s.method != "GET" || s.path != "/p" || s.query != "q=1" {
		t.Errorf("request line = %q %q %q", s.method, s.path, s.query)
	}
	if s.get != "text/html" || s.long != long || s.missing != "" || !s.has || !s.hasEmpty {
		t.Errorf("headers: get=%q long=%d missing=%q has=%v hasEmpty=%v", s.get, len(s.long), s.missing, s.has, s.hasEmpty)
	}
	if strings.Join(s.values, ",") != "a,b" {
		t.Errorf("Values = %q", s.values)
	}
	if strings.Join(s.names, ",") != "Accept,X-Empty,X-Long,X-Multi" {
		t.Errorf("Names = %q", s.names)
	}
	if s.addr != "192.0.2.1:50000" || s.route != "test" || s.id != "req-1" {
		t.Errorf("properties = %q %q %q", s.addr, s.route, s.id)
	}
	if h.Method != "POST" || h.Path != "/rewritten" || h.Query != "a=1" {
		t.Errorf("after: %q %q %q", h.Method, h.Path, h.Query)
	}
	if h.RequestHeader.Get("X-Set") != "1" || h.RequestHeader.Get("X-Long") != "" ||
		strings.Join(h.RequestHeader["X-Multi"], ",") != "a,b,c" {
		t.Errorf("headers after: %v", h.RequestHeader)
	}
}

func TestUnknownProperty(t *testing.T) {
	reset()
	var ok bool
	sluice.OnRequestHeaders(func(sluice.Request) sluice.Action {
		_, ok = sluice.GetProperty(sluice.PropertyProtocol)
		return sluice.Continue
	})
	h := sluicetest.New()
	delete(h.Properties, sluice.PropertyProtocol)
	h.RequestHeaders()
	if ok {
		t.Fatal("GetProperty reported an unknown property as present")
	}
}

func TestRespond(t *testing.T) {
	reset()
	sluice.OnRequestHeaders(func(req sluice.Request) sluice.Action {
		if req.Header().Get("X-Deny") == "" {
			return sluice.Continue
		}
		return sluice.Respond(403, []string{"Content-Type", "text/plain", "X-A", "1", "X-A", "2", "X-Odd"}, []byte("no\n"))
	})
	h := sluicetest.New()
	if r := h.RequestHeaders(); r != nil {
		t.Fatalf("reply %+v, want continue", r)
	}
	h.RequestHeader.Set("X-Deny", "1")
	r := h.RequestHeaders()
	if r == nil {
		t.Fatal("no reply")
	}
	if r.Status != 403 || string(r.Body) != "no\n" || r.Header.Get("Content-Type") != "text/plain" ||
		strings.Join(r.Header["X-A"], ",") != "1,2" || len(r.Header["X-Odd"]) != 1 {
		t.Fatalf("reply = %d %v %q", r.Status, r.Header, r.Body)
	}
}

func TestResponse(t *testing.T) {
	reset()
	var status int
	sluice.OnResponseHeaders(func(resp sluice.Response) sluice.Action {
		status = resp.Status()
		resp.SetStatus(202)
		resp.Header().Set("X-Filtered", resp.Request().Path())
		if _, err := resp.Body(); !errors.Is(err, sluice.ErrBodyNotBuffered) {
			t.Errorf("Body() error = %v, want ErrBodyNotBuffered", err)
		}
		return sluice.Continue
	})
	h := sluicetest.New()
	h.Path = "/x"
	if r := h.ResponseHeaders(); r != nil {
		t.Fatalf("reply %+v", r)
	}
	if status != 200 || h.Status != 202 || h.ResponseHeader.Get("X-Filtered") != "/x" {
		t.Fatalf("status %d -> %d, header %v", status, h.Status, h.ResponseHeader)
	}
}

func TestBodies(t *testing.T) {
	reset()
	sluice.NeedRequestBody()
	sluice.NeedResponseBody()
	sluice.OnRequestHeaders(func(req sluice.Request) sluice.Action {
		b, err := req.Body()
		if err != nil {
			t.Fatal(err)
		}
		if err := req.SetBody(bytes.ToUpper(b)); err != nil {
			t.Fatal(err)
		}
		return sluice.Continue
	})
	sluice.OnResponseHeaders(func(resp sluice.Response) sluice.Action {
		b, err := resp.Body()
		if err != nil {
			t.Fatal(err)
		}
		return sluice.Respond(200, nil, append(b, '!'))
	})
	h := sluicetest.New()
	h.RequestBody = bytes.Repeat([]byte("ab"), 50_000) // larger than the retained scratch
	h.ResponseBody = []byte("resp")
	h.RequestHeaders()
	if !bytes.Equal(h.RequestBody, bytes.Repeat([]byte("AB"), 50_000)) {
		t.Fatalf("request body not replaced (%d bytes)", len(h.RequestBody))
	}
	if r := h.ResponseHeaders(); r == nil || string(r.Body) != "resp!" {
		t.Fatalf("reply = %+v", r)
	}
}

func TestMessage(t *testing.T) {
	reset()
	var closed int
	sluice.OnMessage(func(m *sluice.Message) sluice.MessageAction {
		p := m.Payload()
		switch {
		case m.Kind == sluice.Binary:
			return sluice.Pass
		case bytes.Equal(p, []byte("drop")):
			return sluice.Drop
		case bytes.Equal(p, []byte("bye")):
			return sluice.Close(4000, "asked to")
		case bytes.Equal(p, []byte("ping")):
			sluice.Inject(m.Direction.Reverse(), sluice.Text, []byte("pong"))
			return sluice.Drop
		}
		m.SetPayload(bytes.ToUpper(p))
		if !bytes.Equal(m.Payload(), bytes.ToUpper(p)) || m.Size != len(p) {
			t.Error("Payload after SetPayload is stale")
		}
		return sluice.Pass
	})
	sluice.OnClose(func() { closed++ })
	h := sluicetest.New()

	big := strings.Repeat("a", 100_000)
	for _, tc := range []struct {
		in      string
		kind    sluice.MessageKind
		outcome sluicetest.Outcome
		payload string
	}{
		{"hello", sluice.Text, sluicetest.Passed, "HELLO"},
		{big, sluice.Text, sluicetest.Passed, strings.ToUpper(big)},
		{"\x00bin", sluice.Binary, sluicetest.Passed, "\x00bin"},
		{"drop", sluice.Text, sluicetest.Dropped, "drop"},
		{"bye", sluice.Text, sluicetest.Closed, "bye"},
	} {
		v := h.Message(sluice.ClientToUpstream, tc.kind, []byte(tc.in))
		if v.Outcome != tc.outcome || string(v.Payload) != tc.payload {
			t.Errorf("message %.10q: %v %.10q, want %v %.10q", tc.in, v.Outcome, v.Payload, tc.outcome, tc.payload)
		}
		if tc.outcome == sluicetest.Closed && (v.CloseCode != 4000 || v.CloseReason != "asked to") {
			t.Errorf("close = %d %q", v.CloseCode, v.CloseReason)
		}
	}
	v := h.Text(sluice.UpstreamToClient, "ping")
	if len(v.Injected) != 1 || v.Injected[0].Direction != sluice.ClientToUpstream || string(v.Injected[0].Payload) != "pong" {
		t.Fatalf("injected = %+v", v.Injected)
	}
	h.Close()
	if closed != 1 {
		t.Fatalf("close hook ran %d times", closed)
	}
}

func TestState(t *testing.T) {
	reset()
	sluice.OnMessage(func(m *sluice.Message) sluice.MessageAction {
		if _, ok := sluice.State.Get("missing"); ok {
			t.Error("missing key present")
		}
		n, _ := sluice.State.Get("n")
		sluice.State.Set("n", append(n, 'x'))
		if len(n) == 2 {
			sluice.State.Delete("n")
		}
		return sluice.Pass
	})
	h := sluicetest.New()
	for i := 0; i < 3; i++ {
		h.Text(sluice.ClientToUpstream, "m")
	}
	if _, ok := h.State["n"]; ok {
		t.Fatalf("state = %q, want n deleted on the third message", h.State)
	}
	h.Text(sluice.ClientToUpstream, "m")
	if string(h.State["n"]) != "x" {
		t.Fatalf("state = %q", h.State)
	}
}

func TestShared(t *testing.T) {
	reset()
	var count int64
	var val string
	var ok bool
	sluice.OnRequestHeaders(func(sluice.Request) sluice.Action {
		count = sluice.Shared.Add("hits", 1, time.Second)
		if count == 1 {
			sluice.Shared.Set("first", []byte(sluice.Now().Format(time.RFC3339)), 0)
		}
		var b []byte
		b, ok = sluice.Shared.Get("first")
		val = string(b)
		return sluice.Continue
	})
	h := sluicetest.New()
	h.RequestHeaders()
	h.RequestHeaders()
	if count != 2 || !ok || val != "2023-11-14T22:13:20Z" {
		t.Fatalf("count=%d first=%q ok=%v", count, val, ok)
	}
	h.Advance(time.Second) // the counter expires, the value does not
	h.RequestHeaders()
	if count != 1 || !ok {
		t.Fatalf("after expiry: count=%d ok=%v", count, ok)
	}
	sluice.OnRequestHeaders(func(sluice.Request) sluice.Action {
		sluice.Shared.Delete("first")
		_, ok = sluice.Shared.Get("first")
		return sluice.Continue
	})
	h.RequestHeaders()
	if ok {
		t.Fatal("deleted value still present")
	}
}

func TestClockAndLog(t *testing.T) {
	reset()
	var t0, t1 int64
	sluice.OnRequestHeaders(func(sluice.Request) sluice.Action {
		if t0 == 0 {
			t0 = sluice.Nanotime()
		} else {
			t1 = sluice.Nanotime()
		}
		sluice.LogWarn("at " + sluice.Now().UTC().Format(time.RFC3339))
		return sluice.Continue
	})
	h := sluicetest.New()
	h.RequestHeaders()
	h.Advance(1500 * time.Millisecond)
	h.RequestHeaders()
	if t1-t0 != int64(1500*time.Millisecond) {
		t.Fatalf("monotonic delta = %d", t1-t0)
	}
	if len(h.Logs) != 2 || h.Logs[1].Level != sluice.LevelWarn || h.Logs[1].Message != "at 2023-11-14T22:13:21Z" {
		t.Fatalf("logs = %+v", h.Logs)
	}
}

func Example() {
	// A filter registers its handlers in init; here, inline.
	sluice.OnRequestHeaders(func(req sluice.Request) sluice.Action {
		if req.Header().Get("X-Api-Key") != "secret" {
			return sluice.Respond(401, []string{"Content-Type", "text/plain"}, []byte("who are you?"))
		}
		req.Header().Remove("X-Api-Key")
		return sluice.Continue
	})

	h := sluicetest.New()
	r := h.RequestHeaders()
	fmt.Println(r.Status, r.Header.Get("Content-Type"), string(r.Body))

	h.RequestHeader.Set("X-Api-Key", "secret")
	fmt.Println(h.RequestHeaders() == nil, len(h.RequestHeader["X-Api-Key"]) > 0)
	// Output:
	// 401 text/plain who are you?
	// true false
}
