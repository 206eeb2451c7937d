package upstream

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// countingBackend is a target that counts the TCP connections it accepted
// and those that were closed.
type countingBackend struct {
	*httptest.Server
	opened, closed atomic.Int64
}

func newCountingBackend(t *testing.T, h http.HandlerFunc) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	b.Server = httptest.NewUnstartedServer(h)
	b.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.closed.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// eventually polls cond until it holds, or fails the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Idle connections are closed after the idle timeout, by the pool's sweep
// timer, with no traffic to trigger it.
func TestUpstreamClientIdleTimeout(t *testing.T) {
	back := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	u, _ := url.Parse(back.URL)
	c := New(config.Upstream{MaxIdleConns: 4}, []*url.URL{u})
	c.idleTimeout = 100 * time.Millisecond
	defer c.CloseIdle()
	get := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, back.URL+"/", nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
	}
	get()
	get()
	if c.IdleConns() != 1 || back.opened.Load() != 1 {
		t.Fatalf("idle %d, opened %d; want 1 and 1", c.IdleConns(), back.opened.Load())
	}
	eventually(t, 2*time.Second, "idle connection swept", func() bool { return c.IdleConns() == 0 && back.closed.Load() == 1 })
	get()
	if back.opened.Load() != 2 {
		t.Errorf("after the sweep: %d connections opened, want 2", back.opened.Load())
	}
}
