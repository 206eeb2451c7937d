package wsrelay

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/internal/wsconform"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// TestWebSocketCompressionMemory measures what permessage-deflate costs an
// idle message-mode session: N sessions whose client offered compression
// (keeping its context, as browsers do) and sent one compressed message,
// echoed compressed by an upstream that compresses too, then idle; against
// the same sessions with compression off, and with context takeover off.
// It runs only when SLUICE_WS_MEM is set (to N, or to 1 for 1000):
//
//	SLUICE_WS_MEM=1000 go test -run CompressionMemory -v ./host/internal/wsrelay/
func TestWebSocketCompressionMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SLUICE_WS_MEM"))
	if n == 0 {
		t.Skip("set SLUICE_WS_MEM=N to measure N idle sessions")
	}
	if n == 1 {
		n = 1000
	}
	up := wsconform.NewUpstream(false, true)
	defer up.Close()
	msg := strings.Repeat("a browser message that compresses well, ", 1000) // 40 KiB: fills a 32 KiB window

	// measure opens n sessions to addr, directly to the upstream when opt
	// is nil, and returns their cost per session in heap and stacks.
	measure := func(name string, opt *Options) float64 {
		addr := strings.TrimPrefix(up.URL, "http://")
		if opt != nil {
			opt.PingInterval = 30 * time.Second
			opt.MaxMessageSize = 1 << 20
			p := newTestProxy(t, up.URL, &testkit.Chain{Set: testkit.Modes[1].Hooks}, *opt)
			go func() {
				for range p.stats {
				}
			}()
			addr = strings.TrimPrefix(p.url, "ws://")
		}
		g0 := runtime.NumGoroutine()
		before := heapAndStacks()
		conns := make([]*wsconform.Client, 0, n)
		for range n {
			c, err := wsconform.Dial(addr, "/x", "permessage-deflate; client_max_window_bits")
			if err != nil {
				t.Fatalf("after %d sessions: %v", len(conns), err)
			}
			f := wsconform.Text(msg)
			if c.Deflate != nil {
				f = wsconform.Frame{Fin: true, RSV: 4, Opcode: wsconform.OpText, Payload: c.Compress([]byte(msg))}
			}
			if err := c.Send(f); err != nil {
				t.Fatal(err)
			}
			if ev := c.ReadMessage(5 * time.Second); string(ev.Data) != msg {
				t.Fatalf("echo: %v", ev)
			}
			c.DropCompressor() // the client's, not the relay's
			conns = append(conns, c)
		}
		time.Sleep(300 * time.Millisecond)
		after := heapAndStacks()
		per := float64(after-before) / float64(n)
		t.Logf("%s: %.0f B/session (%.2f goroutines/session)", name, per, float64(runtime.NumGoroutine()-g0)/float64(n))
		for _, c := range conns {
			c.Close()
		}
		for deadline := time.Now().Add(15 * time.Second); runtime.NumGoroutine() > g0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		return per
	}
	direct := measure("client and upstream alone", nil)
	off := measure("compression off", &Options{}) - direct
	on := measure("compression on, context takeover", &Options{Compression: true, ContextTakeover: true}) - direct
	noCtx := measure("compression on, no context takeover", &Options{Compression: true}) - direct
	t.Logf("the relay holds %.0f B per idle session without compression, %.0f B with it (context takeover), %.0f B with it and no context takeover",
		off, on, noCtx)
}
