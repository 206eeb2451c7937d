package host

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/filter"
)

// guardChain is a route's auth filter: it answers 403 to every request
// without "X-Token: ok", records the path it saw, and adds X-User, the
// kind of header an upstream trusts because a filter set it.
type guardChain struct {
	hooks    filter.HookSet
	mu       sync.Mutex
	paths    []string
	upgrades atomic.Int64
}

func (c *guardChain) Hooks() filter.HookSet {
	if c.hooks == 0 {
		return filter.HookRequestHeaders | filter.HookUpgrade
	}
	return c.hooks
}

func (c *guardChain) OnRequestHeaders(x *filter.Exchange) *filter.Reply {
	c.mu.Lock()
	c.paths = append(c.paths, x.Request.URL.Path)
	c.mu.Unlock()
	if x.Request.Header.Get("X-Token") != "ok" {
		return &filter.Reply{Status: http.StatusForbidden, Body: []byte("guarded\n")}
	}
	x.Request.Header.Set("X-User", "alice")
	return nil
}

func (c *guardChain) OnUpgrade(*filter.Exchange) *filter.Reply {
	c.upgrades.Add(1)
	return nil
}
func (c *guardChain) OnResponseHeaders(*filter.Exchange) *filter.Reply { return nil }
func (c *guardChain) OnMessage(*filter.Session, *filter.Message) filter.MessageVerdict {
	return filter.MessageVerdict{}
}
func (c *guardChain) OnClose(*filter.Session) {}

func (c *guardChain) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...)
}

// echoBackend answers every request with a JSON description of what it
// received: the request target as written on the wire, and the headers.
func echoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		json.NewEncoder(w).Encode(struct {
			Target string
			Header http.Header
		}{r.RequestURI, h})
	}))
	t.Cleanup(s.Close)
	return s
}

// echoed is what echoBackend reports.
type echoed struct {
	Target string
	Header http.Header
}

// rawExchange writes req on a new connection to addr and reads one
// response. The body is read whole; err is set when the response is not
// well framed.
func rawExchange(t *testing.T, addr, req string) (*http.Response, []byte, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// hostileUpstream is a target written with a raw listener: serve gets
// each accepted connection with its number (from 1) and scripts the bytes.
type hostileUpstream struct {
	addr  string
	conns atomic.Int64 // accepted
	open  atomic.Int64 // not yet closed by either side
	reqs  atomic.Int64 // requests read by readReq
}

func newHostileUpstream(t *testing.T, serve func(u *hostileUpstream, n int64, c net.Conn, br *bufio.Reader)) *hostileUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &hostileUpstream{addr: "http://" + ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := u.conns.Add(1)
			u.open.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer u.open.Add(-1)
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				serve(u, n, c, bufio.NewReader(c))
			}()
		}
	}()
	return u
}

// readReq reads one request and its body, or returns nil at the end of
// the connection.
func (u *hostileUpstream) readReq(br *bufio.Reader) *http.Request {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return nil // the body never came whole
	}
	u.reqs.Add(1)
	return req
}

// reply writes a response whose body is body, with a Content-Length.
func reply(c net.Conn, body string, extra ...string) {
	io.WriteString(c, replyText(body, extra...))
}

// replyText is the response reply writes.
func replyText(body string, extra ...string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s", len(body), headerLines(extra), body)
}

func headerLines(h []string) string {
	var b strings.Builder
	for _, l := range h {
		b.WriteString(l + "\r\n")
	}
	return b.String()
}

// routeConf is a config with one upstream and the given routes (TOML
// bodies of [[route]] tables, upstream "u" implied).
func routeConf(server, target string, routes ...string) string {
	var b strings.Builder
	b.WriteString("[server]\nlisten = \"127.0.0.1:0\"\n" + server + "\n")
	fmt.Fprintf(&b, "[[upstream]]\nname = \"u\"\ntargets = [%q]\n", target)
	for _, r := range routes {
		b.WriteString("[[route]]\nupstream = \"u\"\n" + r + "\n")
	}
	return b.String()
}
