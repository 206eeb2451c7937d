package upstream

import (
	"bufio"
	"context"
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

// A request cancelled while its body is read ends the read at once, even
// when the cancellation lands between two reads of the body: the next read
// lifts the response timeout's deadline before it waits on the socket, and
// must not lift the cancellation with it.
func TestUpstreamClientCancelBetweenBodyReads(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	back := testkit.NewCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	u, _ := url.Parse(back.URL)
	c := New(config.Upstream{MaxIdleConns: 4}, []*url.URL{u})
	c.respTimeout = time.Minute // a read deadline is in force until the body is read
	defer c.CloseIdle()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, back.URL+"/", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	// Give the cancellation time to act on the connection before the next
	// read (if it has not, the read below only ends sooner).
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := br.ReadByte()
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a read after the cancellation returned a byte")
		}
	case <-time.After(testkit.Wait):
		t.Fatal("a read of the body after the cancellation still waits on the target")
	}
}
