package host

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/testkit"
)

// Every slow peer is cut off within its timeout, and a cut-off client
// frees its upstream connection.
func TestEdgeSlowClient(t *testing.T) {
	const server = "client_body_timeout = \"300ms\"\nsend_timeout = \"300ms\""
	big := strings.Repeat("z", 32<<20)

	t.Run("stalled-body", func(t *testing.T) {
		up := newHostileUpstream(t, func(u *hostileUpstream, _ int64, c net.Conn, br *bufio.Reader) {
			if req := u.readReq(br); req != nil {
				reply(c, "got it")
			}
		})
		px := pxStart(t, routeConf(server, up.addr, ""), nil)
		c, err := net.Dial("tcp", px.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("cut off after %v", took)
		}
		testkit.Eventually(t, 3*time.Second, "upstream connection closed", func() bool { return up.open.Load() == 0 })
		if up.reqs.Load() != 0 {
			t.Errorf("the upstream answered a request whose body never came")
		}
	})

	for _, framing := range []string{"content-length", "chunked"} {
		t.Run("not-reading-"+framing, func(t *testing.T) {
			up := newHostileUpstream(t, func(u *hostileUpstream, _ int64, c net.Conn, br *bufio.Reader) {
				if req := u.readReq(br); req == nil {
					return
				}
				if framing == "chunked" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
					for i := 0; i < len(big); i += 64 << 10 {
						if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", 64<<10, big[i:i+64<<10]); err != nil {
							return
						}
					}
					io.WriteString(c, "0\r\n\r\n")
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(big))
				io.WriteString(c, big)
			})
			px := pxStart(t, routeConf(server, up.addr, ""), nil)
			c, err := net.Dial("tcp", px.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.(*net.TCPConn).SetReadBuffer(4 << 10)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			// Read nothing: the proxy must give up on this client and
			// release the target.
			testkit.Eventually(t, 10*time.Second, "upstream connection closed", func() bool { return up.open.Load() == 0 })
		})
	}
}

// The send_timeout deadline of one response must not outlive it: the next
// request on the keep-alive connection, however long after, still gets its
// "100 Continue" and its answer. (net/http clears the write deadline after
// each request; this holds the proxy to that.)
func TestEdgeSendTimeoutAcrossRequests(t *testing.T) {
	up := newHostileUpstream(t, func(u *hostileUpstream, _ int64, c net.Conn, br *bufio.Reader) {
		for u.readReq(br) != nil {
			reply(c, "ok")
		}
	})
	px := pxStart(t, routeConf("send_timeout = \"200ms\"", up.addr, ""), nil)
	c, err := net.Dial("tcp", px.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	time.Sleep(500 * time.Millisecond) // past the deadline the response left
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v %v", resp, err)
	}
	io.WriteString(c, "hello")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after 100 Continue: %v %v", resp, err)
	}
}

// A target that stalls in the middle of a body ends the client's response
// as an error within read_timeout, never as a clean short body; a target
// that does not read the request body is cut off by send_timeout.
func TestEdgeSlowUpstream(t *testing.T) {
	const upConf = "read_timeout = \"300ms\"\nsend_timeout = \"300ms\""
	for _, tc := range []struct {
		name  string
		write func(c net.Conn)
	}{
		{"content-length", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b") }},
		{"chunked", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nonly ten b\r\n")
		}},
		{"spliced", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("s", 300<<10))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newHostileUpstream(t, func(u *hostileUpstream, _ int64, c net.Conn, br *bufio.Reader) {
				if req := u.readReq(br); req == nil {
					return
				}
				tc.write(c)
				io.Copy(io.Discard, br) // stall until the proxy gives up
			})
			px := pxStart(t, upstreamConf(up.addr, upConf), nil)
			start := time.Now()
			_, body, err := rawExchange(t, px.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			took := time.Since(start)
			if err == nil {
				t.Errorf("the client got a clean %d-byte body from a stalled target", len(body))
			}
			if took > 3*time.Second {
				t.Errorf("the client waited %v", took)
			}
			testkit.Eventually(t, 3*time.Second, "upstream connection closed", func() bool { return up.open.Load() == 0 })
		})
	}

	t.Run("not-reading-request", func(t *testing.T) {
		up := newHostileUpstream(t, func(u *hostileUpstream, _ int64, c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			c.(*net.TCPConn).SetReadBuffer(4 << 10)
			time.Sleep(3 * time.Second) // reads nothing of the body
		})
		px := pxStart(t, upstreamConf(up.addr, upConf), nil)
		c, err := net.Dial("tcp", px.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(8 * time.Second))
		const size = 64 << 20
		go func() {
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
			chunk := []byte(strings.Repeat("u", 1<<20))
			for i := 0; i < size; i += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("status %d, want 504; log: %v", resp.StatusCode, px.logs.records("access"))
		}
	})
}
