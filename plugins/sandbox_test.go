package plugins

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

func TestInfiniteLoopIsStopped(t *testing.T) {
	for _, policy := range []string{"deny", "allow"} {
		t.Run(policy, func(t *testing.T) {
			e := load(t, plug("loop", "loop", func(p *config.Plugin) {
				p.OnError = policy
				p.Timeout.Duration = 20 * time.Millisecond
			}))
			c := e.chain(t)
			goroutines := runtime.NumGoroutine()
			for i := range 3 {
				start := time.Now()
				r := c.OnRequestHeaders(exchange("/"))
				if d := time.Since(start); d > time.Second {
					t.Fatalf("call %d took %v with a 20ms deadline", i, d)
				}
				switch policy {
				case "deny":
					if r == nil || r.Status != 503 {
						t.Fatalf("call %d: reply %+v, want 503", i, r)
					}
				case "allow":
					if r != nil {
						t.Fatalf("call %d: reply %+v, want the filter skipped", i, r)
					}
				}
				// The pool recovers: the discarded instance is replaced in the
				// background, so the next call gets a fresh instance in time.
				waitFor(t, "the pool to refill", func() bool { return e.stats("loop").Instances == 2 })
			}
			v := c.OnMessage(session(), text(filter.ClientToUpstream, "x"))
			if policy == "deny" && (v.Action != filter.MessageClose || v.CloseCode != 1011) {
				t.Errorf("message verdict %+v, want close 1011", v)
			}
			if policy == "allow" && v.Action != filter.MessagePass {
				t.Errorf("message verdict %+v, want pass", v)
			}
			s := e.stats("loop")
			if s.Timeouts != 4 || s.Errors != 4 || s.Discarded != 4 || s.Calls != 4 {
				t.Errorf("stats %+v, want 4 calls, timeouts, errors and discards", s)
			}
			waitFor(t, "no goroutine held by the stopped guests", func() bool {
				return runtime.NumGoroutine() <= goroutines+1
			})
		})
	}
}

func TestOutOfRangePointerTraps(t *testing.T) {
	e := load(t, plug("oob", "oob"))
	c := e.chain(t)
	if r := c.OnRequestHeaders(exchange("/")); r == nil || r.Status != 503 {
		t.Fatalf("reply %+v, want 503", r)
	}
	if v := c.OnMessage(session(), text(filter.ClientToUpstream, "x")); v.Action != filter.MessageClose || v.CloseCode != 1011 {
		t.Fatalf("verdict %+v, want close 1011", v)
	}
	s := e.stats("oob")
	if s.Traps != 2 || s.Discarded != 2 {
		t.Errorf("stats %+v, want 2 traps and discards", s)
	}
	if !strings.Contains(e.logs.String(), "outside guest memory") {
		t.Errorf("log does not explain the trap:\n%s", e.logs)
	}
}

func TestMemoryCap(t *testing.T) {
	// The fixture grows by 4 pages: refused under a 128KiB cap (2 pages),
	// allowed under the default 16MiB.
	// A generous deadline: this test is about memory, and a loaded machine
	// running the race detector can take more than the default 10ms.
	e := load(t, plug("g", "grow", func(p *config.Plugin) { p.MemoryLimit = 128 << 10; p.Timeout.Duration = time.Second }))
	if r := e.chain(t).OnRequestHeaders(exchange("/")); r == nil || r.Status != 200 {
		t.Fatalf("reply %+v, want 200 (memory.grow refused)", r)
	}
	e = load(t, plug("g", "grow", func(p *config.Plugin) { p.Timeout.Duration = time.Second }))
	if r := e.chain(t).OnRequestHeaders(exchange("/")); r == nil || r.Status != 201 {
		t.Fatalf("reply %+v, want 201 (memory.grow allowed)", r)
	}
}

// When every instance is busy and the pool is full, a call waits for one
// only until its deadline.
func TestPoolExhaustedWaitsUntilDeadline(t *testing.T) {
	e := load(t, plug("n", "noop", func(p *config.Plugin) { p.PoolSize = 1; p.Timeout.Duration = 10 * time.Millisecond }))
	p := e.set.plugins[0]
	in, ce := p.acquire()
	if ce != nil {
		t.Fatal(ce)
	}
	start := time.Now()
	r := e.chain(t).OnRequestHeaders(exchange("/"))
	if r == nil || r.Status != 503 {
		t.Fatalf("reply %+v, want 503", r)
	}
	if d := time.Since(start); d < 10*time.Millisecond || d > time.Second {
		t.Errorf("waited %v, want about the 10ms deadline", d)
	}
	in.ctx.disarm()
	p.release(in, nil)
	if r := e.chain(t).OnRequestHeaders(exchange("/")); r != nil {
		t.Fatalf("after release: reply %+v", r)
	}
	if s := e.stats("n"); s.PoolTimeouts != 1 || s.Instances != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Closing a Set while a guest loops cuts the call short.
func TestCloseStopsRunningCalls(t *testing.T) {
	e := load(t, plug("loop", "loop", func(p *config.Plugin) { p.Timeout.Duration = time.Hour }))
	done := make(chan *filter.Reply)
	go func() { done <- e.chain(t).OnRequestHeaders(exchange("/")) }()
	waitFor(t, "the call to start", func() bool { return e.stats("loop").Calls == 1 })
	closed := make(chan struct{})
	go func() { e.set.Close(); close(closed) }()
	select {
	case r := <-done:
		if r == nil || r.Status != 503 {
			t.Errorf("reply %+v, want 503", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call was not stopped by Close")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// TestMessageBudget checks that a message hook's deadline grows with the
// message: one timeout per started 64 KiB.
func TestMessageBudget(t *testing.T) {
	p := &plugin{timeout: 10 * time.Millisecond}
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{
		{0, 10 * time.Millisecond},
		{64 << 10, 10 * time.Millisecond},
		{64<<10 + 1, 20 * time.Millisecond},
		{1 << 20, 160 * time.Millisecond},
	} {
		if got := p.messageBudget(tt.n); got != tt.want {
			t.Errorf("messageBudget(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

// TestLoaderCloseUnderOpenSet closes the Loader while a Set is still open
// and a guest of it runs (a caller bug): the Set is closed first, so the
// call is cut short and has returned before the runtime and the instance's
// memory mapping go. Unmapping the memory under the running guest killed
// the process with SIGSEGV.
func TestLoaderCloseUnderOpenSet(t *testing.T) {
	e := load(t, plug("spin", "spinmem", func(p *config.Plugin) { p.Timeout.Duration = time.Hour }))
	c := e.chain(t)
	done := make(chan *filter.Reply, 1)
	go func() { done <- c.OnRequestHeaders(exchange("/")) }()
	waitFor(t, "the call to start", func() bool { return e.stats("spin").Calls == 1 })
	time.Sleep(50 * time.Millisecond) // well inside the guest's loop
	err := e.loader.Close()
	if err == nil || !strings.Contains(err.Error(), "were open") {
		t.Errorf("Loader.Close: %v, want the open Set reported", err)
	}
	select {
	case r := <-done:
		if r == nil || r.Status != 503 {
			t.Errorf("reply %+v, want 503 (the call was cut short under on_error = deny)", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call still runs after Loader.Close")
	}
}
