package plugins

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

func stateOf(t *testing.T, st *filter.State, key string) []byte {
	t.Helper()
	v, ok := st.Get(key)
	if !ok {
		t.Fatalf("state %q not set by the guest", key)
	}
	return v
}

func i32At(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) }

func TestBufferConvention(t *testing.T) {
	e := load(t, plug("probe", "probe", func(p *config.Plugin) {
		p.Config = map[string]any{"tokens": []any{"demo-token"}}
	}))
	x := exchange("/p")
	x.Request.Header.Set("X-In", "hello")
	x.RequestBody = []byte("not for this guest")
	if r := e.chain(t).OnRequestHeaders(x); r != nil {
		t.Fatalf("reply %+v", r)
	}
	if n := i32At(stateOf(t, &x.State, "small")); n != 6 {
		t.Errorf("get_header into 2 bytes returned %d, want 6 (\"hello\\x00\")", n)
	}
	if b := stateOf(t, &x.State, "buf"); string(b) != "AAAA" {
		t.Errorf("a too-small buffer was written: %q", b)
	}
	if b := stateOf(t, &x.State, "big"); string(b) != "hello\x00" {
		t.Errorf("get_header = %q", b)
	}
	if b := stateOf(t, &x.State, "config"); string(b) != `{"tokens":["demo-token"]}` {
		t.Errorf("get_config = %q", b)
	}
	if b := stateOf(t, &x.State, "plugin"); string(b) != "probe" {
		t.Errorf("get_property(plugin) = %q", b)
	}
	if n := i32At(stateOf(t, &x.State, "unknown")); n != -1 {
		t.Errorf("get_property(99) = %d, want -1", n)
	}
	if b := stateOf(t, &x.State, "method"); string(b) != "GET" {
		t.Errorf("get_method = %q", b)
	}
	if n := i32At(stateOf(t, &x.State, "nobody")); n != -1 {
		t.Errorf("get_body without the body feature = %d, want -1", n)
	}
}

func TestHeadersAcrossTwoFilters(t *testing.T) {
	e := load(t, plug("a", "hdr_a"), plug("b", "hdr_b"))
	x := exchange("/orig?x=y")
	x.Request.Header.Set("X-Multi", "a")
	x.Request.Header.Set("X-Remove", "gone")
	if r := e.chain(t).OnRequestHeaders(x); r != nil {
		t.Fatalf("reply %+v", r)
	}
	if b := stateOf(t, &x.State, "b.xa"); string(b) != "1\x00" {
		t.Errorf("b saw X-A = %q", b)
	}
	if b := stateOf(t, &x.State, "b.multi"); string(b) != "a\x00b\x00" {
		t.Errorf("b saw X-Multi = %q", b)
	}
	if n := i32At(stateOf(t, &x.State, "b.rm")); n != 0 {
		t.Errorf("b saw X-Remove of length %d, want 0 (removed)", n)
	}
	if b := stateOf(t, &x.State, "b.names"); string(b) != "Host\x00X-A\x00X-Multi\x00" {
		t.Errorf("b saw names %q", b)
	}
	if b := stateOf(t, &x.State, "b.path"); string(b) != "/rewritten" {
		t.Errorf("b saw path %q", b)
	}
	if n := i32At(stateOf(t, &x.State, "b.pending")); n != 0 {
		t.Errorf("a pending local response header leaked to the next filter (len %d)", n)
	}
	h := x.Request.Header
	if h.Get("X-A") != "1" || strings.Join(h["X-Multi"], ",") != "a,b" || h.Get("X-Remove") != "" {
		t.Errorf("request headers after the chain: %v", h)
	}
	if x.Request.URL.Path != "/rewritten" || x.Request.URL.RawQuery != "q=1" {
		t.Errorf("URL after the chain: %s", x.Request.URL)
	}
}

func TestLocalResponse(t *testing.T) {
	// respond answers; hdr_b after it must not run.
	e := load(t, plug("deny", "respond"), plug("b", "hdr_b"))
	x := exchange("/")
	r := e.chain(t).OnRequestHeaders(x)
	if r == nil || r.Status != 401 || string(r.Body) != "denied\n" {
		t.Fatalf("reply = %+v, want 401 denied", r)
	}
	if r.Header.Get("WWW-Authenticate") != "Bearer" || r.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("reply headers = %v", r.Header)
	}
	if _, ok := x.State.Get("b.xa"); ok {
		t.Error("the chain went on after a local response")
	}
	// In the response phase, a local response replaces the upstream's.
	x = exchange("/")
	x.Status, x.ResponseHeader = 200, http.Header{"X-Up": {"1"}}
	if r := e.chain(t).OnResponseHeaders(x); r == nil || r.Status != 502 {
		t.Fatalf("response-phase reply = %+v, want 502", r)
	}
}

func TestMisuse(t *testing.T) {
	for _, policy := range []string{"deny", "allow"} {
		t.Run(policy, func(t *testing.T) {
			e := load(t, plug("m", "misuse", func(p *config.Plugin) { p.OnError = policy }))
			r := e.chain(t).OnRequestHeaders(exchange("/"))
			v := e.chain(t).OnMessage(session(), text(filter.ClientToUpstream, "hi"))
			s := e.stats("m")
			if s.Misuses != 2 || s.Errors != 2 || s.Discarded != 2 {
				t.Errorf("stats %+v, want 2 misuses, errors, discards", s)
			}
			if policy == "deny" {
				if r == nil || r.Status != 503 {
					t.Errorf("respond without send_response: reply %+v, want 503", r)
				}
				if v.Action != filter.MessageClose || v.CloseCode != 1011 {
					t.Errorf("unknown action: verdict %+v, want close 1011", v)
				}
			} else {
				if r != nil || v.Action != filter.MessagePass {
					t.Errorf("allow: reply %+v verdict %+v, want the filter skipped", r, v)
				}
			}
			if !strings.Contains(e.logs.String(), "without calling send_response") {
				t.Errorf("log does not explain the misuse:\n%s", e.logs)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	e := load(t, plug("m1", "msg"), plug("m2", "msg"))
	c := e.chain(t)
	s := session()

	m := text(filter.ClientToUpstream, "a")
	if v := c.OnMessage(s, m); v.Action != filter.MessagePass || string(m.Payload) != "a!!" {
		t.Errorf("append twice: verdict %+v payload %q, want pass \"a!!\"", v, m.Payload)
	}
	m = text(filter.UpstreamToClient, "r")
	if v := c.OnMessage(s, m); v.Action != filter.MessagePass || string(m.Payload) != "replaced" {
		t.Errorf("replace: verdict %+v payload %q", v, m.Payload)
	}
	m = text(filter.ClientToUpstream, "d")
	if v := c.OnMessage(s, m); v.Action != filter.MessageDrop {
		t.Errorf("drop: verdict %+v", v)
	}
	m = text(filter.ClientToUpstream, "c")
	if v := c.OnMessage(s, m); v.Action != filter.MessageClose || v.CloseCode != 4001 || v.CloseReason != "bye" {
		t.Errorf("close: verdict %+v", v)
	}
	m = text(filter.ClientToUpstream, "i")
	v := c.OnMessage(s, m)
	if v.Action != filter.MessagePass || len(v.Inject) != 2 || string(m.Payload) != "i" {
		t.Fatalf("inject: verdict %+v payload %q, want pass with 2 injections", v, m.Payload)
	}
	for _, in := range v.Inject {
		if in.Direction != filter.UpstreamToClient || in.Binary || string(in.Payload) != "injected" {
			t.Errorf("injected %+v", in)
		}
	}
	bin := &filter.Message{Direction: filter.ClientToUpstream, Binary: true, Payload: []byte{'z', 0, 1}}
	if v := c.OnMessage(s, bin); v.Action != filter.MessagePass || string(bin.Payload) != "z\x00\x01" {
		t.Errorf("binary pass-through: %+v %q", v, bin.Payload)
	}

	// Per-session state: m1 counts (and replaces the payload with the
	// count, which m2 passes as it is), each session separately.
	s2 := session()
	for i, want := range []string{"1", "2"} {
		m = text(filter.ClientToUpstream, "s")
		c.OnMessage(s, m)
		if string(m.Payload) != want {
			t.Errorf("session 1 message %d: count %q, want %q", i, m.Payload, want)
		}
	}
	m = text(filter.ClientToUpstream, "s")
	c.OnMessage(s2, m)
	if string(m.Payload) != "1" {
		t.Errorf("session 2 sees count %q, want its own \"1\"", m.Payload)
	}

	c.OnClose(s)
	c.OnClose(s2)
	for _, ns := range []string{"m1", "m2"} {
		v, ok, _ := e.shared.Get(context.Background(), ns, "closed")
		if !ok || string(v) != "2" {
			t.Errorf("on_close of %s counted %q, want \"2\"", ns, v)
		}
	}
	if s := e.stats("m1"); s.Errors != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestStatePerRequest(t *testing.T) {
	e := load(t, plug("s", "state"))
	c := e.chain(t)
	x := exchange("/")
	c.OnRequestHeaders(x)
	x.Status, x.ResponseHeader = 200, http.Header{}
	c.OnResponseHeaders(x)
	if got := x.ResponseHeader.Get("X-Seen"); got != "req" {
		t.Errorf("same request: X-Seen = %q, want req", got)
	}
	// Another request has its own state, even on the same instance.
	y := exchange("/")
	y.Status = 200
	c.OnResponseHeaders(y)
	if got := y.ResponseHeader.Get("X-Seen"); got != "none" {
		t.Errorf("other request: X-Seen = %q, want none", got)
	}
}

func TestSharedAddTTLAndNamespaces(t *testing.T) {
	e := load(t, plug("c1", "counter"), plug("c2", "counter"))
	c := e.chain(t)
	count := func() int64 {
		x := exchange("/")
		c.OnRequestHeaders(x)
		v, _ := x.State.Get("n") // the second filter's count overwrites the first's
		return int64(binary.LittleEndian.Uint64(v))
	}
	for want := int64(1); want <= 3; want++ {
		if got := count(); got != want {
			t.Fatalf("count %d, want %d", got, want)
		}
	}
	// Each plugin counted in its own namespace.
	for _, ns := range []string{"c1", "c2"} {
		if v, ok, _ := e.shared.Get(context.Background(), ns, "hits"); !ok || string(v) != "3" {
			t.Errorf("%s hits = %q", ns, v)
		}
	}
	time.Sleep(60 * time.Millisecond) // past the 50ms TTL set by the first add
	if got := count(); got != 1 {
		t.Fatalf("after the TTL: count %d, want 1", got)
	}
}

func TestWASIStdoutGoesToLog(t *testing.T) {
	e := load(t, plug("w", "wasi"))
	e.chain(t).OnRequestHeaders(exchange("/"))
	logs := e.logs.String()
	for _, want := range []string{`msg="hello from guest" plugin=w stream=stdout`, `msg="second line" plugin=w stream=stdout`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "partial") {
		t.Error("an unterminated line was logged before the instance closed")
	}
	e.set.Close()
	if !strings.Contains(e.logs.String(), `msg=partial plugin=w stream=stdout`) {
		t.Errorf("the unterminated line was not flushed at close:\n%s", e.logs)
	}
}

// Many goroutines share one chain (run with -race).
func TestConcurrentChain(t *testing.T) {
	e := load(t, plug("a", "hdr_a", func(p *config.Plugin) { p.PoolSize = 3 }),
		plug("b", "hdr_b", func(p *config.Plugin) { p.PoolSize = 3; p.Timeout.Duration = time.Second }),
		plug("m", "msg", func(p *config.Plugin) { p.PoolSize = 3; p.Timeout.Duration = time.Second }))
	// A cold pool and a slow machine under -race: give hdr_a's calls room too.
	e.set.plugins[0].timeout = time.Second
	c := e.chain(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := session()
			for i := range 50 {
				x := exchange(fmt.Sprintf("/g%d/%d", g, i))
				if r := c.OnRequestHeaders(x); r != nil {
					errs <- fmt.Errorf("reply %+v", r)
					return
				}
				if x.Request.Header.Get("X-A") != "1" || x.Request.URL.Path != "/rewritten" {
					errs <- fmt.Errorf("filter a did not run: %v", x.Request.Header)
					return
				}
				m := text(filter.ClientToUpstream, "a")
				if v := c.OnMessage(s, m); v.Action != filter.MessagePass || string(m.Payload) != "a!" {
					errs <- fmt.Errorf("message: %+v %q", v, m.Payload)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range e.set.Stats() {
		if s.Errors != 0 || s.Instances > 3 {
			t.Errorf("stats %+v: want no errors and at most 3 instances", s)
		}
	}
}

func TestOtherHostFunctions(t *testing.T) {
	e := load(t, plug("misc", "misc", bodies))
	c := e.chain(t)
	if want := filter.HookRequestHeaders | filter.HookResponseHeaders | filter.HookRequestBody | filter.HookResponseBody; c.Hooks() != want {
		t.Errorf("Hooks() = %b, want %b", c.Hooks(), want)
	}
	x := exchange("/p?a=1&b=2")
	x.RequestBody = []byte("old body")
	before := time.Now().UnixNano()
	if r := c.OnRequestHeaders(x); r != nil {
		t.Fatalf("reply %+v; log:\n%s", r, e.logs)
	}
	checks := map[string]string{"body": "old body", "query": "a=1&b=2", "host": "example.org\x00", "shared": "v"}
	for k, want := range checks {
		if got := stateOf(t, &x.State, k); string(got) != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"gone", "sdel"} {
		if n := i32At(stateOf(t, &x.State, k)); n != -1 {
			t.Errorf("%s = %d, want -1 (absent)", k, n)
		}
	}
	if wall := int64(binary.LittleEndian.Uint64(stateOf(t, &x.State, "wall"))); wall < before || wall > time.Now().UnixNano() {
		t.Errorf("clock(wall) = %d, not now", wall)
	}
	if mono := int64(binary.LittleEndian.Uint64(stateOf(t, &x.State, "mono"))); mono <= 0 {
		t.Errorf("clock(monotonic) = %d", mono)
	}
	if string(x.RequestBody) != "new body" || x.Request.Method != "POST" || x.Request.Host != "example.org" {
		t.Errorf("after the hook: body %q method %s host %s", x.RequestBody, x.Request.Method, x.Request.Host)
	}
	if !strings.Contains(e.logs.String(), `level=INFO msg="hello log" plugin=misc`) {
		t.Errorf("guest log missing:\n%s", e.logs)
	}

	x.Status, x.ResponseHeader, x.ResponseBody = 200, http.Header{}, []byte("upstream")
	if r := c.OnResponseHeaders(x); r != nil {
		t.Fatalf("reply %+v", r)
	}
	if n := i32At(stateOf(t, &x.State, "status")); n != 200 {
		t.Errorf("get_status = %d", n)
	}
	if got := stateOf(t, &x.State, "rbody"); string(got) != "upstream" {
		t.Errorf("response body = %q", got)
	}
	if x.Status != 299 || string(x.ResponseBody) != "resp" {
		t.Errorf("after the response hook: status %d body %q", x.Status, x.ResponseBody)
	}
	if s := e.stats("misc"); s.Errors != 0 {
		t.Errorf("stats %+v", s)
	}
}
