package wsrelay

import (
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/internal/wsconform"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// countingConn counts the bytes a client reads and writes: what the
// session costs on the wire between client and proxy.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// BenchmarkRelayEcho measures one message's round trip (client -> relay ->
// echo upstream -> relay -> client) with a 4 KiB JSON-like text message, in
// both modes, with permessage-deflate off and on (the client and the
// upstream are gorilla, which compresses without context takeover).
// wire-B/op is what went over the client's socket per round trip;
// cpu-µs/op the process's CPU time per round trip (client and upstream
// included), steadier than wall time on a shared machine.
//
//	go test -run '^$' -bench RelayEcho -count 5 ./host/internal/wsrelay/
func BenchmarkRelayEcho(b *testing.B) {
	up := wsconform.NewUpstream(false, true)
	defer up.Close()
	msg := []byte(`[` + strings.Repeat(`{"user":"alice","text":"hello there, how are you today?","ts":1733500000},`, 56) + `{}]`)
	for _, mode := range testkit.Modes {
		for _, z := range []bool{false, true} {
			name := mode.Name + "/compression=off"
			if z {
				name = mode.Name + "/compression=on"
			}
			b.Run(name, func(b *testing.B) {
				p := newTestProxy(b, up.URL, &testkit.Chain{Set: mode.Hooks}, Options{
					MaxMessageSize: 1 << 20, Compression: z, ContextTakeover: true})
				go func() {
					for range p.stats {
					}
				}()
				var wire atomic.Int64
				d := websocket.Dialer{EnableCompression: z, NetDial: func(network, addr string) (net.Conn, error) {
					c, err := net.Dial(network, addr)
					return countingConn{c, &wire}, err
				}}
				c, _, err := d.Dial(p.url+"/x", nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				b.SetBytes(int64(len(msg)))
				b.ResetTimer()
				wire.Store(0)
				cpu0 := processCPU()
				for range b.N {
					c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
						b.Fatal(err)
					}
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, got, err := c.ReadMessage(); err != nil || len(got) != len(msg) {
						b.Fatalf("echo: %d bytes, %v", len(got), err)
					}
				}
				b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-B/op")
				b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
