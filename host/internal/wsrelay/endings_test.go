package wsrelay

import (
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/internal/wsproto"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// TestUpstreamClosesAndResets is the race between the two directions when
// the upstream ends first: it sends a message and close 1002 and resets the
// connection at once, while the client keeps sending. Both modes must
// deliver the message and the upstream's 1002, never a 1001 of the relay's
// own because a write towards the vanished upstream failed first.
func TestUpstreamClosesAndResets(t *testing.T) {
	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) { upstreamClosesAndResets(t, mode.Hooks) })
	}
}

func upstreamClosesAndResets(t *testing.T, hooks filter.HookSet) {
	final := append(wsproto.AppendFrame(nil, true, false, wsproto.OpText, []byte("last words"), false),
		wsproto.AppendFrame(nil, true, false, wsproto.OpClose, wsproto.CloseFrame(1002, "bye"), false)...)
	up := hostileUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %ACCEPT%\r\n\r\n",
		func(c net.Conn) error {
			// Let the client's messages start flowing, then end.
			buf := make([]byte, 1024)
			c.Read(buf)
			c.Write(final)
			c.(*net.TCPConn).SetLinger(0) // reset, no FIN
			return net.ErrClosed
		})
	p := newTestProxy(t, up, &testkit.Chain{Set: hooks}, Options{})
	go func() {
		for range p.stats {
		}
	}()
	for i := range 30 {
		c, _, err := websocket.DefaultDialer.Dial(p.url+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c.WriteMessage(websocket.BinaryMessage, make([]byte, 4096)) != nil {
					return
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := c.ReadMessage()
		if err != nil || string(m) != "last words" {
			t.Fatalf("run %d: got %q, %v; want the upstream's last message", i, m, err)
		}
		_, _, err = c.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1002 || ce.Text != "bye" {
			t.Fatalf("run %d: got %v; want the upstream's close 1002", i, err)
		}
		close(stop)
		c.Close()
	}
}
