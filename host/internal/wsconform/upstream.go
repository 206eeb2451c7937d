package wsconform

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Upstream is an echo server (gorilla/websocket) behind the proxy. It echoes
// every message with its type, answers pings (gorilla does), and answers a
// close with the same code and reason. A text message "cmd:close <code>
// <reason>" makes it close first; "cmd:burst <n> <code>" makes it send n
// messages "m0".."m<n-1>" and then close with code, in one go.
//
// A strict upstream also refuses invalid UTF-8 in text messages with 1007,
// as RFC 6455 section 8.1 asks; a lax one echoes them.
type Upstream struct {
	*httptest.Server
	Strict bool

	mu     sync.Mutex
	closes []int // close codes received, in order
}

// NewUpstream starts an echo server on 127.0.0.1. compression lets it
// accept permessage-deflate (gorilla's: no context takeover).
func NewUpstream(strict, compression bool) *Upstream {
	u := &Upstream{Strict: strict}
	up := websocket.Upgrader{
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: compression,
		ReadBufferSize:    4096,
		WriteBufferSize:   4096,
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		u.serve(c)
	}))
	return u
}

// Closes returns the close codes the upstream received so far.
func (u *Upstream) Closes() []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]int(nil), u.closes...)
}

func (u *Upstream) serve(c *websocket.Conn) {
	defer c.Close()
	c.SetReadLimit(64 << 20)
	var wmu sync.Mutex
	closeSent := false
	sendClose := func(code int, reason string) {
		wmu.Lock()
		defer wmu.Unlock()
		if closeSent {
			return
		}
		closeSent = true
		payload := websocket.FormatCloseMessage(code, reason)
		if code == websocket.CloseNoStatusReceived {
			payload = nil
		}
		c.WriteControl(websocket.CloseMessage, payload, time.Now().Add(time.Second))
	}
	c.SetCloseHandler(func(code int, text string) error {
		u.mu.Lock()
		u.closes = append(u.closes, code)
		u.mu.Unlock()
		sendClose(code, text)
		return nil
	})
	for {
		typ, p, err := c.ReadMessage()
		if err != nil {
			// After the close handshake the server closes the TCP
			// connection first (RFC 6455 section 7.1.1): return.
			return
		}
		if typ == websocket.TextMessage && u.Strict && !utf8.Valid(p) {
			sendClose(websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
			continue
		}
		if typ == websocket.TextMessage && strings.HasPrefix(string(p), "cmd:") {
			u.command(c, &wmu, string(p[4:]), sendClose)
			continue
		}
		wmu.Lock()
		if !closeSent {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.WriteMessage(typ, p)
		}
		wmu.Unlock()
	}
}

func (u *Upstream) command(c *websocket.Conn, wmu *sync.Mutex, cmd string, sendClose func(int, string)) {
	var code, n int
	var reason string
	switch {
	case strings.HasPrefix(cmd, "close "):
		fmt.Sscan(cmd[len("close "):], &code)
		if f := strings.SplitN(cmd, " ", 3); len(f) == 3 {
			reason = f[2]
		}
		sendClose(code, reason)
	case strings.HasPrefix(cmd, "raw "):
		// Bytes as they are, hex-encoded: frames that break the protocol.
		b, err := hex.DecodeString(cmd[len("raw "):])
		if err != nil {
			return
		}
		wmu.Lock()
		c.UnderlyingConn().Write(b)
		wmu.Unlock()
	case strings.HasPrefix(cmd, "flood "):
		// Binary messages of n bytes until a write fails: a peer that
		// does not read is what stops it.
		fmt.Sscan(cmd[len("flood "):], &n)
		p := make([]byte, n)
		go func() {
			wmu.Lock()
			defer wmu.Unlock()
			for {
				c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if c.WriteMessage(websocket.BinaryMessage, p) != nil {
					return
				}
			}
		}()
	case strings.HasPrefix(cmd, "burst "):
		fmt.Sscan(cmd[len("burst "):], &n, &code)
		wmu.Lock()
		for i := range n {
			c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "m%d", i))
		}
		wmu.Unlock()
		sendClose(code, "burst done")
	}
}
