package wsrelay

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// TestWebSocketIdleMemory measures what an idle proxied session costs the
// relay, in both testkit.Modes: the heap and stacks of N sessions through
// Serve, minus the same N clients connected to the upstream
// directly (clients and upstream live in this process too). It opens
// thousands of sockets, so it runs only when SLUICE_WS_MEM is set (to N, or
// to 1 for 2000):
//
//	SLUICE_WS_MEM=5000 go test -run IdleMemory -v ./host/
//
// SLUICE_WS_MEM_PROFILE=dir also writes heap and goroutine profiles of the
// idle moment there.
func TestWebSocketIdleMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SLUICE_WS_MEM"))
	if n == 0 {
		t.Skip("set SLUICE_WS_MEM=N to measure N idle sessions")
	}
	if n == 1 {
		n = 2000
	}
	if os.Getenv("SLUICE_WS_MEM_PROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for exact per-session figures
	}
	upgrader := websocket.Upgrader{ReadBufferSize: 256, WriteBufferSize: 256}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	upURL := "ws" + up.URL[len("http"):]

	// measure opens n sessions to url and returns what they cost, per
	// session, in heap and stacks.
	measure := func(url string) float64 {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		defer func() {
			t.Logf("  heap %+d B/session, stacks %+d B/session",
				(int64(m1.HeapInuse)-int64(m0.HeapInuse))/int64(n), (int64(m1.StackInuse)-int64(m0.StackInuse))/int64(n))
		}()
		d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: 10 * time.Second}
		g0 := runtime.NumGoroutine()
		before := heapAndStacks()
		conns := make([]*websocket.Conn, 0, n)
		for range n {
			c, _, err := d.Dial(url, nil)
			if err != nil {
				t.Fatalf("after %d sessions: %v", len(conns), err)
			}
			conns = append(conns, c)
		}
		// Let every session settle into its idle state (raw mode parks a
		// direction after idlePark without bytes).
		time.Sleep(idlePark + 300*time.Millisecond)
		after := heapAndStacks()
		runtime.ReadMemStats(&m1)
		t.Logf("  %.2f goroutines/session", float64(runtime.NumGoroutine()-g0)/float64(n))
		if dir := os.Getenv("SLUICE_WS_MEM_PROFILE"); dir != "" {
			writeProfiles(t, dir, strings.ReplaceAll(t.Name(), "/", "-")+"-"+strconv.Itoa(len(url)))
		}
		for _, c := range conns {
			c.Close()
		}
		// Wait for every session to end before the next measurement.
		for deadline := time.Now().Add(15 * time.Second); runtime.NumGoroutine() > g0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		return float64(after-before) / float64(n)
	}

	for _, mode := range testkit.Modes {
		t.Run(mode.Name, func(t *testing.T) {
			direct := measure(upURL)
			t.Logf("%d idle sessions, client and upstream alone: %.0f B/session", n, direct)
			p := newTestProxy(t, up.URL, &testkit.Chain{Set: mode.Hooks}, Options{PingInterval: 30 * time.Second})
			go func() {
				for range p.stats {
				}
			}()
			// The proxy's own listener and handler are the test server's
			// (net/http), as in the real proxy.
			proxied := measure(p.url + "/x")
			t.Logf("%s mode: %.0f B/session through the relay (net/http server connection included)", mode.Name, proxied-direct)
		})
	}
}

// writeProfiles writes the heap and goroutine profiles of the moment to
// dir (SLUICE_WS_MEM_PROFILE=dir), to see what idle sessions hold.
func writeProfiles(t *testing.T, dir, name string) {
	for _, prof := range []string{"heap", "goroutine"} {
		f, err := os.Create(filepath.Join(dir, name+"."+prof))
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup(prof).WriteTo(f, 0)
		f.Close()
	}
}

func heapAndStacks() uint64 {
	var ms runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
