package host

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Go's HTTP server resolves two ambiguities of a request head before the
// handler runs and keeps no trace of them: a Content-Length sent beside
// Transfer-Encoding is deleted (RFC 9112 §6.3 lets a server read by the
// encoding), and the Host header of an absolute-form request is dropped in
// favour of the target's authority (§3.2.2). nginx answers both 400, and a
// proxy in front that read the head the other way would disagree with us
// about the request. So on plain-HTTP connections the proxy keeps the raw
// bytes the server reads between two requests (the next request's head,
// and whatever follows it in the same reads) and, for the few requests
// where it matters, looks at the head as it was sent.
//
// Over TLS the bytes on the socket are ciphertext; there, and whenever the
// head cannot be found (a pipelined request read during its predecessor),
// the request is read as net/http read it and the connection is closed after
// a request framed by Transfer-Encoding (see ServeHTTP), which is what
// keeps a proxy in front from slipping a second request in.

// headListener hands the server connections that record request heads.
type headListener struct {
	net.Listener
	max int // bytes kept between two requests; past it the oldest go
}

func (l headListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	hc := &headConn{TCPConn: tc, max: l.max}
	hc.capturing = true
	return hc, nil
}

// headConn is a client connection that keeps the bytes read while no
// handler runs on it. It embeds *net.TCPConn, so everything the server and
// the WebSocket relay ask of the connection (ReadFrom for splice,
// CloseWrite, SyscallConn) is the TCP connection's own.
type headConn struct {
	*net.TCPConn
	max int

	mu        sync.Mutex
	capturing bool // between requests; false during a handler and once hijacked
	gone      bool // hijacked: never records again
	head      []byte
}

func (c *headConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if c.capturing {
			if len(c.head)+n > c.max {
				c.head = c.head[:0] // the head that matters comes last
			}
			if n <= c.max {
				c.head = append(c.head, p[:n]...)
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

// begin stops recording for the length of a handler and, when r is set,
// returns the head of r as the client sent it, or nil when it is not among
// the recorded bytes. The result is valid until end.
func (c *headConn) begin(r *http.Request) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.capturing = false
	if r == nil {
		return nil
	}
	return findHead(c.head, r)
}

// keepHead is the largest recording buffer an idle connection keeps; a
// larger one (a big head, or body bytes read with it) is let go, so idle
// keep-alive connections cost little.
const keepHead = 2 << 10

// end records again, for the next request's head.
func (c *headConn) end() {
	c.mu.Lock()
	if cap(c.head) > keepHead {
		c.head = nil
	} else {
		c.head = c.head[:0]
	}
	c.capturing = !c.gone
	c.mu.Unlock()
}

// hijacked stops recording for good: the connection carries another
// protocol now, and an idle WebSocket should hold no buffer.
func (c *headConn) hijacked() {
	c.mu.Lock()
	c.capturing, c.gone = false, true
	c.head = nil
	c.mu.Unlock()
}

// findHead returns the head of r in buf: from its request line (found by
// " <target> HTTP/", since the first byte of a method may have been read
// while the previous request was served) to the blank line.
func findHead(buf []byte, r *http.Request) []byte {
	marker := " " + r.RequestURI + " HTTP/"
	i := bytes.LastIndex(buf, []byte(marker))
	if i < 0 {
		return nil
	}
	head := buf[i:]
	if j := bytes.Index(head, []byte("\r\n\r\n")); j >= 0 {
		return head[:j+2]
	}
	if j := bytes.Index(head, []byte("\n\n")); j >= 0 {
		return head[:j+1]
	}
	return nil
}

// headerValues returns the values of the header field name (compared
// case-insensitively) in a raw head, the request line excluded.
func headerValues(head []byte, name string) []string {
	var out []string
	lines := strings.Split(string(head), "\n")
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

type headConnKey struct{}

// headConnContext puts a recording connection in its requests' context.
func headConnContext(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*headConn); ok {
		return context.WithValue(ctx, headConnKey{}, hc)
	}
	return ctx
}

// headConnState stops recording on a hijacked connection.
func headConnState(c net.Conn, s http.ConnState) {
	if hc, ok := c.(*headConn); ok && s == http.StateHijacked {
		hc.hijacked()
	}
}

var (
	errCLAndTE   = errors.New("host: a request with both Content-Length and Transfer-Encoding")
	errHostClash = errors.New("host: the absolute-form target's authority and the Host header disagree")
)

// checkHead checks the raw head of r, when its connection recorded it, for
// what net/http resolved silently, and returns why r must be refused, or
// nil. The caller must call the returned hc's end when the handler ends
// (hc is nil when the connection does not record).
func checkHead(r *http.Request) (hc *headConn, err error) {
	hc, _ = r.Context().Value(headConnKey{}).(*headConn)
	if hc == nil {
		return nil, nil
	}
	absolute := !strings.HasPrefix(r.RequestURI, "/")
	if len(r.TransferEncoding) == 0 && !absolute {
		hc.begin(nil)
		return hc, nil
	}
	head := hc.begin(r)
	switch {
	case head == nil:
	case len(r.TransferEncoding) > 0 && len(headerValues(head, "Content-Length")) > 0:
		err = errCLAndTE
	case absolute:
		hosts := headerValues(head, "Host")
		if len(hosts) != 1 || normalizeHost(hosts[0]) != normalizeHost(r.Host) {
			err = errHostClash
		}
	}
	return hc, err
}
