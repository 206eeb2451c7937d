package host

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A pooled connection carries a new request only if the last response
// ended exactly at its framing and nothing arrived since. The hostile
// target answers the first request on each connection, then misbehaves
// (extra bytes, a second response, a late body); a second request, from
// another client connection, must get the answer meant for it, and never
// the injected one.
func TestEdgeReuseAfterExtraBytes(t *testing.T) {
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nSet-Cookie: session=attacker\r\n\r\nEVIL"
	big := strings.Repeat("b", 200<<10) // takes the splice path
	for _, tc := range []struct {
		name   string
		method string
		first  func(c net.Conn) // the answer to the first request
	}{
		{"past-content-length", "GET", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA") }},
		{"second-response", "GET", func(c net.Conn) { reply(c, "ok"); io.WriteString(c, evil) }},
		{"late-second-response", "GET", func(c net.Conn) {
			reply(c, "ok")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, evil)
		}},
		{"body-on-204", "GET", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n"+"EVIL") }},
		{"body-on-304", "GET", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\n"+"EVIL") }},
		{"body-on-head", "HEAD", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"+"EVIL") }},
		{"late-body-on-head", "HEAD", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, evil)
		}},
		{"after-1xx", "GET", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+evil)
		}},
		{"past-chunked-end", "GET", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"+evil)
		}},
		{"past-spliced-body", "GET", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big)
			io.WriteString(c, evil)
		}},
		{"late-past-spliced-body", "GET", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big)
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, evil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newHostileUpstream(t, func(u *hostileUpstream, n int64, c net.Conn, br *bufio.Reader) {
				for i := 0; ; i++ {
					req := u.readReq(br)
					if req == nil {
						return
					}
					if n == 1 && i == 0 {
						tc.first(c)
						continue
					}
					reply(c, "mine:"+req.URL.Path)
				}
			})
			px := pxStart(t, routeConf("", up.addr, ""), nil)
			addr := px.Addr().String()
			resp, _, err := rawExchange(t, addr, tc.method+" /first HTTP/1.1\r\nHost: x\r\n\r\n")
			if err != nil {
				t.Fatalf("first: %v", err)
			}
			resp.Body.Close()
			time.Sleep(100 * time.Millisecond) // let late bytes arrive on the idle connection
			for i := 0; i < 3; i++ {
				path := "/second" + strconv.Itoa(i)
				resp, body, err := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if string(body) != "mine:"+path || resp.Header.Get("Set-Cookie") != "" {
					t.Fatalf("%s got %d %q (Set-Cookie %q): another request's bytes", path, resp.StatusCode, body, resp.Header.Get("Set-Cookie"))
				}
			}
			if up.conns.Load() < 2 {
				t.Errorf("the misbehaving connection was reused (%d connections)", up.conns.Load())
			}
		})
	}
}

// A target that ignores the body of a GET reads it as a second request and
// answers it later. The client who wrote that body chooses the answer (and
// its Set-Cookie); it must never reach the next user of the connection.
func TestEdgeSmuggledGetBody(t *testing.T) {
	up := newHostileUpstream(t, func(u *hostileUpstream, n int64, c net.Conn, br *bufio.Reader) {
		for {
			// Reads a head and ignores any body, as some servers do for
			// GET.
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			for {
				h, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if h == "\r\n" {
					break
				}
			}
			path := strings.Fields(line)[1]
			if path == "/smuggled" {
				time.Sleep(150 * time.Millisecond) // a slow endpoint
				reply(c, "smuggled", "Set-Cookie: session=attacker")
				continue
			}
			reply(c, "mine:"+path)
		}
	})
	px := pxStart(t, routeConf("", up.addr, ""), nil)
	addr := px.Addr().String()
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	resp, body, err := rawExchange(t, addr, fmt.Sprintf("GET /attacker HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled))
	if err != nil || string(body) != "mine:/attacker" {
		t.Fatalf("attacker: %v %q %v", resp, body, err)
	}
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 3; i++ {
		path := "/victim" + strconv.Itoa(i)
		resp, body, err := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != "mine:"+path || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("%s got %q (Set-Cookie %q)", path, body, resp.Header.Get("Set-Cookie"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Many clients at once against a target that misbehaves on some of its
// connections: no client ever receives bytes meant for another.
func TestEdgeNoCrossClientResponses(t *testing.T) {
	up := newHostileUpstream(t, func(u *hostileUpstream, n int64, c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			req := u.readReq(br)
			if req == nil {
				return
			}
			body := "for:" + req.URL.Path
			switch {
			case n%5 == 0 && i%3 == 1:
				// An unsolicited answer right behind the real one, naming
				// a request that belongs to someone else.
				io.WriteString(c, replyText(body)+replyText("for:/c0/r0", "Set-Cookie: stolen=1"))
			case n%7 == 0 && i%2 == 1:
				// Bytes past Content-Length.
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%sHTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfor:/c0/r1", len(body), body)
			case n%11 == 0 && i == 2:
				// A late body on a response that has none.
				fmt.Fprintf(c, "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nfor:/c0/r2")
			default:
				reply(c, body)
			}
		}
	})
	px := pxStart(t, routeConf("", up.addr, ""), nil)
	addr := px.Addr().String()

	const clients, perClient = 24, 40
	var wg sync.WaitGroup
	var bad, errs atomic.Int64
	for ci := 0; ci < clients; ci++ {
		wg.Add(1)
		go func(ci int) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs.Add(1)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for ri := 0; ri < perClient; ri++ {
				path := fmt.Sprintf("/c%d/r%d", ci+1, ri)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs.Add(1)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs.Add(1)
					return
				}
				if resp.StatusCode == 200 && string(b) != "for:"+path || resp.Header.Get("Set-Cookie") != "" || len(b) > 0 && string(b) != "for:"+path {
					bad.Add(1)
					t.Errorf("client %d asked %s, got %d %q", ci+1, path, resp.StatusCode, b)
				}
				if resp.Close {
					return
				}
			}
		}(ci)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d responses reached the wrong client", bad.Load())
	}
	if errs.Load() != 0 {
		t.Errorf("%d client connections failed", errs.Load())
	}
	t.Logf("%d requests, %d upstream connections", up.reqs.Load(), up.conns.Load())
}

// A response timeout is not a dead connection: the request is not sent
// again (POST or GET), and the 504 arrives at response_timeout, not twice
// that.
func TestEdgeNoRetryAfterTimeout(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			up := newHostileUpstream(t, func(u *hostileUpstream, n int64, c net.Conn, br *bufio.Reader) {
				for {
					req := u.readReq(br)
					if req == nil {
						return
					}
					if req.URL.Path == "/warm" {
						reply(c, "warm")
						continue
					}
					// Never answers: the request hangs until the proxy
					// gives up.
					io.Copy(io.Discard, br)
					return
				}
			})
			px := pxStart(t, upstreamConf(up.addr, "response_timeout = \"1s\""), nil)
			addr := px.Addr().String()
			if _, _, err := rawExchange(t, addr, "GET /warm HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			body := ""
			if method == "POST" {
				body = "Content-Length: 0\r\n"
			}
			start := time.Now()
			resp, _, err := rawExchange(t, addr, method+" /slow HTTP/1.1\r\nHost: x\r\n"+body+"\r\n")
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("status %d, want 504", resp.StatusCode)
			}
			if took > 1500*time.Millisecond {
				t.Errorf("504 after %v, response_timeout is 1s", took)
			}
			if n := up.reqs.Load(); n != 2 {
				t.Errorf("the upstream received %d requests, want 2 (no retry)", n)
			}
		})
	}
}
