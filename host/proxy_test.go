package host

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/testkit"
)

func TestForwardingHeaders(t *testing.T) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hop-by-hop headers of the response must not reach the client.
		w.Header().Set("Connection", "X-Hop-Resp")
		w.Header().Set("X-Hop-Resp", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(back.Close)
	px := pxStart(t, fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)

	send := func(hdr ...string) (http.Header, http.Header) {
		t.Helper()
		conn, err := net.Dial("tcp", px.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A raw request, so the client library does not touch Connection.
		req := "GET /h HTTP/1.1\r\nHost: front.example.com\r\n" + strings.Join(hdr, "\r\n") + "\r\n\r\n"
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got http.Header
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got, resp.Header
	}

	up, down := send("Connection: keep-alive, X-Hop", "X-Hop: secret", "Keep-Alive: timeout=9",
		"Proxy-Authorization: Basic eA==", "X-Forwarded-For: 203.0.113.7", "X-End: kept")
	for _, h := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization"} {
		if up.Get(h) != "" {
			t.Errorf("hop-by-hop %s reached the upstream: %q", h, up.Get(h))
		}
	}
	if up.Get("X-End") != "kept" {
		t.Errorf("end-to-end header lost")
	}
	if got := up.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if up.Get("X-Forwarded-Proto") != "http" || up.Get("X-Forwarded-Host") != "front.example.com" {
		t.Errorf("X-Forwarded-Proto/Host = %q %q", up.Get("X-Forwarded-Proto"), up.Get("X-Forwarded-Host"))
	}
	if up.Get("Host") != "front.example.com" {
		t.Errorf("Host to upstream = %q, want the client's", up.Get("Host"))
	}
	if up.Get("Via") != "1.1 sluice" {
		t.Errorf("Via to upstream = %q", up.Get("Via"))
	}
	id := up.Get("X-Request-Id")
	if id == "" || down.Get("X-Request-Id") != id {
		t.Errorf("request id: upstream %q, client %q", id, down.Get("X-Request-Id"))
	}
	if down.Get("X-Hop-Resp") != "" || down.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", down)
	}
	if down.Get("Via") != "1.1 sluice" {
		t.Errorf("Via to client = %q", down.Get("Via"))
	}

	// A second request gets another id; a client's id is kept.
	up2, _ := send()
	if up2.Get("X-Request-Id") == id || up2.Get("X-Request-Id") == "" {
		t.Errorf("ids not unique: %q then %q", id, up2.Get("X-Request-Id"))
	}
	up3, down3 := send("X-Request-Id: client-chosen-42")
	if up3.Get("X-Request-Id") != "client-chosen-42" || down3.Values("X-Request-Id")[0] != "client-chosen-42" || len(down3.Values("X-Request-Id")) != 1 {
		t.Errorf("client id not kept: upstream %q, client %q", up3.Get("X-Request-Id"), down3.Values("X-Request-Id"))
	}
}

func TestStreamingUpload(t *testing.T) {
	const size = 8 << 20
	firstMiB := make(chan struct{})
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		var n int64
		signalled := false
		for {
			k, err := r.Body.Read(buf)
			h.Write(buf[:k])
			n += int64(k)
			if n >= 1<<20 && !signalled {
				signalled = true
				close(firstMiB)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	t.Cleanup(back.Close)
	px := pxStart(t, fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)

	pr, pw := io.Pipe()
	want := sha256.New()
	go func() {
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
		for sent := 0; sent < size; sent += len(chunk) {
			if sent == 2<<20 {
				// Hold the rest back until the backend has read the first
				// MiB: a proxy that buffered the whole body would stall here.
				select {
				case <-firstMiB:
				case <-time.After(5 * time.Second):
					pw.CloseWithError(fmt.Errorf("backend saw nothing after 2 MiB were sent"))
					return
				}
			}
			want.Write(chunk)
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, px.url+"/upload", pr) // ContentLength -1: chunked
	resp, err := testkit.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if wantBody := fmt.Sprintf("%d %x", size, want.Sum(nil)); string(body) != wantBody {
		t.Fatalf("backend got %q, want %q", body, wantBody)
	}
}

func TestStreamingResponse(t *testing.T) {
	clientGotFirst := make(chan struct{})
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-clientGotFirst:
		case <-time.After(5 * time.Second):
			return // the test fails below: the last chunk is never written
		}
		fmt.Fprint(w, "data: last\n\n")
	}))
	t.Cleanup(back.Close)
	px := pxStart(t, fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL), nil)
	resp, err := testkit.Client().Get(px.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	close(clientGotFirst)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: last\n\n" {
		t.Fatalf("rest = %q", rest)
	}
}

// testChain is a filter chain written in Go, exercising the hook points.
type testChain struct {
	hooks         filter.HookSet
	requestCalls  atomic.Int64
	responseCalls atomic.Int64
}

func (c *testChain) Hooks() filter.HookSet { return c.hooks }

func (c *testChain) OnRequestHeaders(x *filter.Exchange) *filter.Reply {
	c.requestCalls.Add(1)
	r := x.Request
	if r.Header.Get("Authorization") != "Bearer ok" {
		return &filter.Reply{Status: http.StatusUnauthorized, Header: http.Header{"X-Denied-By": {"test"}}, Body: []byte("no token\n")}
	}
	r.Header.Set("X-Filtered", x.Route)
	r.Header.Del("Authorization")
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		r.URL.Path = "/internal/" + strings.TrimPrefix(r.URL.Path, "/v1/")
	}
	if c.hooks.Has(filter.HookRequestBody) {
		x.RequestBody = bytes.ToUpper(x.RequestBody)
	}
	x.State.Set("user", []byte("alice"))
	return nil
}

func (c *testChain) OnUpgrade(*filter.Exchange) *filter.Reply { return nil }

func (c *testChain) OnResponseHeaders(x *filter.Exchange) *filter.Reply {
	c.responseCalls.Add(1)
	user, _ := x.State.Get("user")
	x.ResponseHeader.Set("X-User", string(user))
	x.ResponseHeader.Del("X-Secret")
	if x.Status == http.StatusTeapot {
		return &filter.Reply{Status: http.StatusForbidden, Body: []byte("replaced\n")}
	}
	if c.hooks.Has(filter.HookResponseBody) {
		x.ResponseBody = append([]byte("<<"), append(x.ResponseBody, ">>"...)...)
		x.Status = http.StatusAccepted
	}
	return nil
}

func (c *testChain) OnMessage(*filter.Session, *filter.Message) filter.MessageVerdict {
	return filter.MessageVerdict{}
}
func (c *testChain) OnClose(*filter.Session) {}

func TestChainHooks(t *testing.T) {
	var upstreamCalls atomic.Int64
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Secret", "s3cret")
		if r.URL.Path == "/internal/teapot" {
			w.WriteHeader(http.StatusTeapot)
		}
		fmt.Fprintf(w, "%s %s filtered=%s auth=%q body=%s cl=%d", r.Method, r.URL.Path,
			r.Header.Get("X-Filtered"), r.Header.Get("Authorization"), body, r.ContentLength)
	}))
	t.Cleanup(back.Close)
	headersOnly := &testChain{hooks: filter.HookRequestHeaders | filter.HookResponseHeaders}
	withBodies := &testChain{hooks: filter.HookRequestHeaders | filter.HookRequestBody | filter.HookResponseHeaders | filter.HookResponseBody}
	none := &testChain{hooks: 0}
	px := pxStart(t, fmt.Sprintf(`
[[upstream]]
name = "u"
targets = [%q]
[[route]]
name = "headers"
path_prefix = "/v1/"
upstream = "u"
[[route]]
name = "bodies"
path_prefix = "/b/"
upstream = "u"
[[route]]
name = "none"
path_prefix = "/n/"
upstream = "u"
`, back.URL), map[string]filter.Chain{"headers": headersOnly, "bodies": withBodies, "none": none})
	cl := testkit.Client()

	// A reply from OnRequestHeaders short-circuits: the upstream sees nothing.
	status, body, h := testkit.Get(t, cl, px.url+"/v1/x")
	if status != 401 || body != "no token\n" || h.Get("X-Denied-By") != "test" || h.Get("X-Request-Id") == "" {
		t.Errorf("refused: %d %q %v", status, body, h)
	}
	if upstreamCalls.Load() != 0 {
		t.Errorf("a refused request reached the upstream")
	}

	// Mutations of path and headers reach the upstream; response headers change.
	status, body, h = testkit.Get(t, cl, px.url+"/v1/users", "Authorization", "Bearer ok")
	if status != 200 || body != `GET /internal/users filtered=headers auth="" body= cl=0` {
		t.Errorf("mutated request: %d %q", status, body)
	}
	if h.Get("X-User") != "alice" || h.Get("X-Secret") != "" {
		t.Errorf("response headers: X-User %q (state from the request hook), X-Secret %q", h.Get("X-User"), h.Get("X-Secret"))
	}

	// A reply from OnResponseHeaders replaces the upstream's response.
	status, body, _ = testkit.Get(t, cl, px.url+"/v1/teapot", "Authorization", "Bearer ok")
	if status != 403 || body != "replaced\n" {
		t.Errorf("replaced response: %d %q", status, body)
	}

	// Bodies are buffered, handed to the filters and replaced.
	req, _ := http.NewRequest(http.MethodPost, px.url+"/b/echo", io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")))
	req.Header.Set("Authorization", "Bearer ok")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `<<POST /b/echo filtered=bodies auth="" body=HELLO WORLD cl=11>>`
	if resp.StatusCode != http.StatusAccepted || string(rb) != want || resp.ContentLength != int64(len(want)) {
		t.Errorf("bodies: %d %q (length %d), want 202 %q", resp.StatusCode, rb, resp.ContentLength, want)
	}

	// A chain without hooks is never called.
	if status, _, _ := testkit.Get(t, cl, px.url+"/n/x"); status != 200 || none.requestCalls.Load() != 0 || none.responseCalls.Load() != 0 {
		t.Errorf("hookless chain: status %d, calls %d/%d", status, none.requestCalls.Load(), none.responseCalls.Load())
	}
}

func TestAccessLog(t *testing.T) {
	b := testkit.NameBackend(t, "b")
	px := pxStart(t, fmt.Sprintf("[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nname = \"main\"\nupstream = \"u\"\n", b.URL), nil)
	_, body, h := testkit.Get(t, testkit.Client(), px.url+"/logged?x=1")
	var rec map[string]any
	testkit.Eventually(t, time.Second, "access record", func() bool {
		rs := px.logs.records("access")
		if len(rs) > 0 {
			rec = rs[0]
		}
		return rec != nil
	})
	want := map[string]any{
		"method": "GET", "path": "/logged", "route": "main", "upstream": strings.TrimPrefix(b.URL, "http://"),
		"status": float64(200), "bytes": float64(len(body)), "request_id": h.Get("X-Request-Id"),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("access log %s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
	if _, ok := rec["duration"]; !ok {
		t.Errorf("access log without duration: %v", rec)
	}
}

// The request id is cheap and unique.
func TestRequestIDs(t *testing.T) {
	p := &Proxy{idPrefix: "ab12cd34-"}
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := p.newRequestID()
		if seen[id] || !strings.HasPrefix(id, "ab12cd34-") {
			t.Fatalf("bad id %q", id)
		}
		seen[id] = true
	}
	if n := testing.AllocsPerRun(100, func() { p.newRequestID() }); n > 1 {
		t.Errorf("newRequestID allocates %v times", n)
	}
}

// Handing a copy buffer back costs no allocation (the race detector's pool
// drops some buffers on purpose, hence less than one per round, not zero).
func TestBufferPoolPutDoesNotAllocate(t *testing.T) {
	var bp bufferPool
	bp.Put(bp.Get())
	if n := testing.AllocsPerRun(200, func() { bp.Put(bp.Get()) }); n >= 1 {
		t.Fatalf("%v allocations per Get and Put", n)
	}
}
