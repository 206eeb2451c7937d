package wsrelay

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/internal/wsproto"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// hostileUpstream accepts connections, reads the handshake request and
// answers with answer (%ACCEPT% replaced by the right Sec-WebSocket-Accept),
// then keeps writing more.
func hostileUpstream(t *testing.T, answer string, more func(net.Conn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				c.Write([]byte(strings.ReplaceAll(answer, "%ACCEPT%", wsproto.AcceptKey(req.Header.Get("Sec-Websocket-Key")))))
				for more != nil && more(c) == nil {
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestHostileUpstreamAnswers checks that an upstream's wrong answer to the
// handshake is refused with 502, and an endless one after a bounded read.
func TestHostileUpstreamAnswers(t *testing.T) {
	endless := func(c net.Conn) error {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Write([]byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n"))
		return err
	}
	for _, tc := range []struct {
		name, answer string
		more         func(net.Conn) error
	}{
		{"endless headers", "HTTP/1.1 101 Switching Protocols\r\n", endless},
		{"bad accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n", nil},
		{"a valid answer", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %ACCEPT%\r\n\r\n", nil},
		{"extension not offered", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %ACCEPT%\r\nSec-WebSocket-Extensions: x-unknown\r\n\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := hostileUpstream(t, tc.answer, tc.more)
			p := newTestProxy(t, up, &testkit.Chain{Set: testkit.Modes[1].Hooks}, Options{HandshakeTimeout: 10 * time.Second, Compression: true})
			start := time.Now()
			_, resp, err := websocket.DefaultDialer.Dial(p.url+"/x", nil)
			want := http.StatusBadGateway
			if tc.name == "a valid answer" {
				want = http.StatusSwitchingProtocols // the control: the test upstream can pass
			}
			if resp == nil || resp.StatusCode != want {
				t.Fatalf("got %v, %v; want %d", resp, err, want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("refused after %v", d)
			}
		})
	}
}
