package upstream

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// Idle connections are closed after the idle timeout, by the pool's sweep
// timer, with no traffic to trigger it.
func TestUpstreamClientIdleTimeout(t *testing.T) {
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
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
	if c.IdleConns() != 1 || back.Opened.Load() != 1 {
		t.Fatalf("idle %d, opened %d; want 1 and 1", c.IdleConns(), back.Opened.Load())
	}
	testkit.Eventually(t, 2*time.Second, "idle connection swept", func() bool { return c.IdleConns() == 0 && back.Closed.Load() == 1 })
	get()
	if back.Opened.Load() != 2 {
		t.Errorf("after the sweep: %d connections opened, want 2", back.Opened.Load())
	}
}
