package host

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluiceproxy/sluice/host/filter"

	"github.com/sluiceproxy/sluice/host/testkit"
)

// Path tricks must not reach a route other than the one the normalized
// path selects: /internal/ is guarded by a filter, / is open. Each request
// is written raw, so no client library cleans it first.
func TestEdgePathTricks(t *testing.T) {
	back := echoBackend(t)
	guard := &guardChain{}
	px := pxStart(t, routeConf("", back.URL,
		"name = \"open\"\npath_prefix = \"/\"",
		"name = \"internal\"\npath_prefix = \"/internal/\"\nplugins = []"),
		map[string]filter.Chain{"internal": guard})
	addr := px.Addr().String()

	for _, tc := range []struct {
		target string
		status int
		path   string // what the filter saw (guarded) or the upstream got (open)
	}{
		{"/internal/secret", 403, "/internal/secret"},
		{"/x/../internal/secret", 403, "/internal/secret"},
		{"/./internal/secret", 403, "/internal/secret"},
		{"//internal/secret", 403, "/internal/secret"},
		{"/%2e%2e/internal/secret", 403, "/internal/secret"},
		{"/%2E/internal/./secret", 403, "/internal/secret"},
		{"/x/%2e%2e/%69nternal/secret", 403, "/internal/secret"},
		{"/../../internal/secret", 403, "/internal/secret"},
		{"/internal/../internal/secret", 403, "/internal/secret"},
		{"/x/..%2finternal/secret", 400, ""},
		{"/internal%2Fsecret", 400, ""},
		{"/x\\..\\internal/secret", 400, ""},
		{"/%5cinternal/secret", 400, ""},
		{"/internal/%00", 400, ""},
		{"/internal/%zz", 400, ""},
		{"*", 400, ""},
		{"http://front.example/x/../internal/secret", 403, "/internal/secret"},
		{"http://other.example/internal/secret", 400, ""},
		{"https://front.example/internal/secret", 400, ""},
		{"/public/./a//b/../c", 200, "/public/a/c"},
		{"/public/%7Euser/%41", 200, "/public/~user/A"},
		{"/public/a%3Fb", 200, "/public/a%3Fb"},
		{"/internal", 200, "/internal"}, // the prefix is "/internal/"
	} {
		t.Run(tc.target, func(t *testing.T) {
			before := len(guard.seen())
			resp, body, err := rawExchange(t, addr, "GET "+tc.target+" HTTP/1.1\r\nHost: front.example\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			switch tc.status {
			case 403:
				seen := guard.seen()
				if len(seen) != before+1 || seen[len(seen)-1] != tc.path {
					t.Errorf("the filter saw %q, want %q", seen[before:], tc.path)
				}
			case 200:
				var e echoed
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatal(err)
				}
				if e.Target != tc.path {
					t.Errorf("upstream got %q, want %q", e.Target, tc.path)
				}
			case 400:
				if resp.Close != true {
					t.Errorf("a rejected target did not close the connection")
				}
			}
		})
	}
}

// The escaped-slash policy and merge_slashes change what a path means;
// forward_raw_path sends the client's bytes while the route still matches
// the normalized path.
func TestEdgePathPolicies(t *testing.T) {
	back := echoBackend(t)
	for _, tc := range []struct {
		name, server, route string
		target              string
		status              int
		upstream            string
	}{
		{"keep", "escaped_slashes = \"keep\"", "", "/a%2fb/c", 200, "/a%2Fb/c"},
		{"keep-segment", "escaped_slashes = \"keep\"", "", "/a%2fb/../c", 200, "/c"},
		{"keep-is-data", "escaped_slashes = \"keep\"", "", "/a%2F..%2Fb", 200, "/a%2F..%2Fb"},
		{"decode", "escaped_slashes = \"decode\"", "", "/a%2fb/../c", 200, "/a/c"},
		{"decode-backslash", "escaped_slashes = \"decode\"", "", "/a\\b\\..\\c", 200, "/a/c"},
		{"no-merge", "merge_slashes = false", "", "/a//b", 200, "/a//b"},
		{"merge", "", "", "/a//b", 200, "/a/b"},
		{"raw", "", "forward_raw_path = true", "/a/./b/../%7e", 200, "/a/./b/../%7e"},
		{"raw-still-rejects", "", "forward_raw_path = true", "/a%2fb", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := pxStart(t, routeConf(tc.server, back.URL, tc.route), nil)
			resp, body, err := rawExchange(t, px.Addr().String(), "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			var e echoed
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Target != tc.upstream {
				t.Errorf("upstream got %q, want %q", e.Target, tc.upstream)
			}
		})
	}
}

// Only Upgrade tokens a route names become tunnels. A target that answers
// 101 to anything must not turn a plain request (or an h2c one on a route
// that does not allow h2c) into a tunnel past routing and filters.
func TestEdgeUpgradeTokens(t *testing.T) {
	up := newHostileUpstream(t, func(u *hostileUpstream, _ int64, c net.Conn, br *bufio.Reader) {
		req := u.readReq(br)
		if req == nil {
			return
		}
		// Says what it was asked for, then switches regardless.
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\nX-Asked: %s\r\n\r\ntunnel ",
			req.Header.Get("Upgrade"), req.Header.Get("Upgrade"))
		io.Copy(c, br)
	})
	guard := &guardChain{}
	px := pxStart(t, routeConf("", up.addr,
		"name = \"default\"\npath_prefix = \"/\"",
		"name = \"h2c\"\npath_prefix = \"/h2c/\"\nupgrades = [\"websocket\", \"h2c\"]\nplugins = []",
		"name = \"none\"\npath_prefix = \"/none/\"\nupgrades = []"),
		map[string]filter.Chain{"h2c": guard})
	addr := px.Addr().String()

	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"h2c-not-allowed", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", 502},
		{"no-upgrade-asked", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 502},
		{"upgrade-without-connection", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n", 502},
		{"websocket-not-allowed", "GET /none/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 502},
		{"h2c-allowed", "GET /h2c/ HTTP/1.1\r\nHost: x\r\nX-Token: ok\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 101},
		{"h2c-allowed-filter-denies", "GET /h2c/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.req)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 101 {
				return
			}
			if resp.Header.Get("X-Asked") != "h2c" {
				t.Errorf("upstream was asked to upgrade to %q", resp.Header.Get("X-Asked"))
			}
			if guard.upgrades.Load() == 0 {
				t.Errorf("the route's upgrade hook did not run")
			}
			io.WriteString(c, "ok")
			got := make([]byte, len("tunnel ok"))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != "tunnel ok" {
				t.Errorf("tunnel: %q %v", got, err)
			}
		})
	}
}

// The client's Connection header removes only what the client sent:
// headers the proxy or a filter adds reach the upstream on the HTTP and
// the WebSocket paths alike.
func TestEdgeConnectionHeader(t *testing.T) {
	back := echoBackend(t)
	guard := &guardChain{hooks: filter.HookRequestHeaders}
	px := pxStart(t, routeConf("", back.URL, "name = \"r\"\nplugins = []"), map[string]filter.Chain{"r": guard})
	_, body, err := rawExchange(t, px.Addr().String(), "GET /h HTTP/1.1\r\nHost: x\r\nX-Token: ok\r\n"+
		"Connection: keep-alive, X-User, X-Request-Id, X-Forwarded-For, Via, X-Secret\r\nX-Secret: hop\r\nX-User: mallory\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	var e echoed
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	h := e.Header
	if h.Get("X-User") != "alice" {
		t.Errorf("X-User = %q, want the filter's", h.Get("X-User"))
	}
	if h.Get("X-Request-Id") == "" || h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("Via") != "1.1 sluice" {
		t.Errorf("proxy headers removed: id %q, xff %q, via %q", h.Get("X-Request-Id"), h.Get("X-Forwarded-For"), h.Get("Via"))
	}
	if h.Get("X-Secret") != "" {
		t.Errorf("a header the client named in Connection reached the upstream")
	}

	// WebSocket: the upstream's handshake request. Written raw, since
	// gorilla's dialer sets Connection itself.
	got := make(chan http.Header, 1)
	ws := echoWS(t, func(r *http.Request) { got <- r.Header.Clone() })
	px2 := pxStart(t, routeConf("", ws, "name = \"r\"\nplugins = []"), map[string]filter.Chain{"r": guard})
	resp, _, err := rawExchange(t, px2.Addr().String(), "GET /ws HTTP/1.1\r\nHost: x\r\nX-Token: ok\r\nX-Secret: hop\r\n"+
		"Connection: Upgrade, X-User, X-Request-Id, X-Forwarded-For, X-Secret\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil && resp == nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket handshake: %d", resp.StatusCode)
	}
	wh := <-got
	if wh.Get("X-User") != "alice" || wh.Get("X-Request-Id") == "" || wh.Get("X-Forwarded-For") == "" {
		t.Errorf("WebSocket handshake lost proxy or filter headers: %v", wh)
	}
	if wh.Get("X-Secret") != "" {
		t.Errorf("WebSocket: a header the client named in Connection reached the upstream")
	}
}

// echoWS is a WebSocket upstream that reports each handshake request.
func echoWS(t *testing.T, seen func(*http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen(r)
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// Framing per RFC 9112 at the client side of the proxy.
func TestEdgeFraming(t *testing.T) {
	up := newHostileUpstream(t, func(u *hostileUpstream, _ int64, c net.Conn, br *bufio.Reader) {
		for {
			req := u.readReq(br)
			if req == nil {
				return
			}
			if req.URL.Path == "/hints" {
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
			}
			reply(c, "ok")
		}
	})
	px := pxStart(t, routeConf("", up.addr, ""), nil)
	addr := px.Addr().String()
	for _, tc := range []struct {
		name, req string
		status    int
		closed    bool
	}{
		{"cl-and-te", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400, true},
		{"te-and-cl-lower", "POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n", 400, true},
		{"bad-chunk-size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, true},
		{"chunk-too-long", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400, true},
		{"good-chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, true},
		{"content-length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.req)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.closed {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, err := br.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("connection not closed after %d: read %d %v", tc.status, n, err)
				}
			}
		})
	}

	t.Run("no-1xx-to-http10", func(t *testing.T) {
		for _, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /hints %s\r\nHost: x\r\nConnection: close\r\n\r\n", proto)
			all, _ := io.ReadAll(c)
			c.Close()
			has103 := strings.Contains(string(all), " 103 ")
			if has103 != (proto == "HTTP/1.1") {
				t.Errorf("%s client: 103 relayed = %v\n%s", proto, has103, all)
			}
			if !strings.HasSuffix(string(all), "ok") {
				t.Errorf("%s client: no final response\n%s", proto, all)
			}
		}
	})
}

// X-Forwarded-* and Forwarded are kept only from trusted proxies.
func TestEdgeTrustedProxies(t *testing.T) {
	back := echoBackend(t)
	req := "GET / HTTP/1.1\r\nHost: front.example\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: spoofed.example\r\nForwarded: for=203.0.113.9\r\n\r\n"
	for _, tc := range []struct {
		name, server             string
		xff, proto, host, fwdStr string
	}{
		{"untrusted", "", "127.0.0.1", "http", "front.example", ""},
		{"other-network", "trusted_proxies = [\"10.0.0.0/8\"]", "127.0.0.1", "http", "front.example", ""},
		{"trusted", "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]", "203.0.113.9, 127.0.0.1", "https", "spoofed.example", "for=203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := pxStart(t, routeConf(tc.server, back.URL, ""), nil)
			_, body, err := rawExchange(t, px.Addr().String(), req)
			if err != nil {
				t.Fatal(err)
			}
			var e echoed
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			h := e.Header
			if h.Get("X-Forwarded-For") != tc.xff || h.Get("X-Forwarded-Proto") != tc.proto ||
				h.Get("X-Forwarded-Host") != tc.host || h.Get("Forwarded") != tc.fwdStr {
				t.Errorf("got XFF %q proto %q host %q Forwarded %q", h.Get("X-Forwarded-For"),
					h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"), h.Get("Forwarded"))
			}
		})
	}
}

// The admin listener without a token trusts loopback; a browser must not
// be able to reach it on a page's behalf.
func TestEdgeAdminBrowserGuard(t *testing.T) {
	b := testkit.NameBackend(t, "b")
	px := pxStart(t, fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", b.URL), nil)
	var changed int
	px.HandleAdmin("POST /poke", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { changed++ }))
	admin := px.AdminAddr().String()
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"loopback-host", "GET /healthz HTTP/1.1\r\nHost: " + admin + "\r\n\r\n", 200},
		{"localhost", "GET /healthz HTTP/1.1\r\nHost: localhost:9901\r\n\r\n", 200},
		{"rebinding", "GET /healthz HTTP/1.1\r\nHost: evil.example:9901\r\n\r\n", 403},
		{"curl-post", "POST /poke HTTP/1.1\r\nHost: " + admin + "\r\nContent-Length: 0\r\n\r\n", 200},
		{"form-post", "POST /poke HTTP/1.1\r\nHost: " + admin + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n", 403},
		{"text-post", "POST /poke HTTP/1.1\r\nHost: " + admin + "\r\nContent-Type: text/plain;charset=utf-8\r\nContent-Length: 0\r\n\r\n", 403},
		{"cross-origin", "POST /poke HTTP/1.1\r\nHost: " + admin + "\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n", 403},
		{"cross-site", "POST /poke HTTP/1.1\r\nHost: " + admin + "\r\nSec-Fetch-Site: cross-site\r\nContent-Length: 0\r\n\r\n", 403},
		{"same-origin", "POST /poke HTTP/1.1\r\nHost: " + admin + "\r\nOrigin: http://" + admin + "\r\nSec-Fetch-Site: same-origin\r\nContent-Length: 0\r\n\r\n", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, err := rawExchange(t, admin, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	if changed != 2 {
		t.Errorf("the state-changing endpoint ran %d times, want 2", changed)
	}
}

// The client's Connection header still governs the client's own
// connection after the proxy applied it to the request: HTTP/1.0
// keep-alive is honoured and "close" closes.
func TestEdgeConnectionPersistence(t *testing.T) {
	back := echoBackend(t)
	px := pxStart(t, routeConf("", back.URL, ""), nil)
	for _, tc := range []struct {
		name, req string
		open      bool
	}{
		{"http10-keep-alive", "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", true},
		{"http10", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", false},
		{"http11-close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
		{"http11", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", px.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.req)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err = br.ReadByte()
			open := err != io.EOF
			if open != tc.open {
				t.Errorf("connection open after the response: %v, want %v (%v)", open, tc.open, err)
			}
		})
	}

	// The access log shows the normalized path.
	rawExchange(t, px.Addr().String(), "GET /a/./b/../c HTTP/1.1\r\nHost: x\r\n\r\n")
	testkit.Eventually(t, 2*time.Second, "access log", func() bool {
		recs := px.logs.records("access")
		return len(recs) > 0 && recs[len(recs)-1]["path"] == "/a/c"
	})
}
