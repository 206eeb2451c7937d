package metrics

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// traffic is a Traffic a test sets by hand.
type traffic struct{ msgs, bytes [2]atomic.Int64 }

func (t *traffic) Load(d int) (int64, int64) { return t.msgs[d].Load(), t.bytes[d].Load() }

func TestCloseCodeLabels(t *testing.T) {
	for _, c := range []struct {
		code int
		want string
	}{
		{1000, "1000"}, {1001, "1001"}, {1011, "1011"}, {1015, "1015"},
		{3000, "3xxx"}, {3999, "3xxx"}, {4001, "4xxx"}, {4999, "4xxx"},
		{0, "other"}, {999, "other"}, {1016, "other"}, {2000, "other"}, {5000, "other"}, {-1, "other"},
	} {
		t.Run(c.want, func(t *testing.T) {
			if got := closeCodeLabel(closeCodeIndex(c.code)); got != c.want {
				t.Errorf("close code %d: label %q, want %q", c.code, got, c.want)
			}
		})
	}
}

func TestStatusClasses(t *testing.T) {
	for _, c := range []struct {
		status int
		want   string
	}{{101, "1xx"}, {200, "2xx"}, {0, "2xx"}, {302, "3xx"}, {499, "4xx"}, {503, "5xx"}, {999, "5xx"}, {42, "1xx"}} {
		if got := classes[classIndex(c.status)]; got != c.want {
			t.Errorf("status %d: class %s, want %s", c.status, got, c.want)
		}
	}
}

// A session's traffic is counted exactly once, whether a scrape sees it
// live or after it ended, and totals never go down while sessions end
// concurrently with scrapes.
func TestWebSocketTrafficCountedOnce(t *testing.T) {
	r := New(BuildInfo{})
	rt := r.Route("chat")
	const sessions = 50
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var last float64
	scrapes := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			v := r.ws.snapshot()[wsKey{"chat", 1}].msgs[0]
			if float64(v) < last {
				t.Errorf("messages went down: %d after %v", v, last)
			}
			last = float64(v)
			scrapes++
		}
	}()
	for range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &traffic{}
			s := rt.OpenSession(false, tr)
			for range 10 {
				tr.msgs[0].Add(1)
				tr.bytes[0].Add(3)
			}
			s.End(1000, "client")
			s.End(1000, "client") // a second End changes nothing
		}()
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	sum := r.ws.snapshot()[wsKey{"chat", 1}]
	if sum.msgs[0] != sessions*10 || sum.bytes[0] != sessions*30 || sum.open != 0 {
		t.Errorf("after %d sessions: %+v", sessions, sum)
	}
	if got := testutil.ToFloat64(rt.wsTotal[1]); got != sessions {
		t.Errorf("sessions_total = %v, want %d", got, sessions)
	}
}

// An aborted handshake is neither a session nor a close.
func TestWebSocketAbort(t *testing.T) {
	r := New(BuildInfo{})
	rt := r.Route("chat")
	s := rt.OpenSession(true, &traffic{})
	s.Abort()
	if got := testutil.ToFloat64(rt.wsTotal[0]); got != 0 {
		t.Errorf("sessions_total = %v after an abort", got)
	}
	if n := testutil.CollectAndCount(r.wsCloses); n != 0 {
		t.Errorf("%d close series after an abort", n)
	}
}

// The exposition passes client_golang's own lint (promtool's rules).
func TestExpositionLint(t *testing.T) {
	r := New(ReadBuildInfo())
	rt := r.Route("r")
	rt.Request(200, time.Millisecond, 10, 20)
	rt.ProxyError(CauseUpstreamTimeout)
	h := r.Plugin("p").Hook("message")
	h.Call(3*time.Microsecond, OutcomeDrop)
	h.Failure(FailTrap)
	r.Target("u", "127.0.0.1:1").HealthCheck(true)
	rt.OpenSession(false, &traffic{}).End(1011, "proxy")
	r.Reload("loaded", time.Second)
	problems, err := testutil.GatherAndLint(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "sluice_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// The cost of recording, per request, per hook call and per WebSocket
// session: compare with the tens of microseconds a proxied request takes
// and the ~2µs of a trivial hook call.
func BenchmarkRecordRequest(b *testing.B) {
	rt := New(BuildInfo{}).Route("r")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rt.Request(200, 40*time.Microsecond, 0, 64)
		}
	})
}

func BenchmarkRecordHookCall(b *testing.B) {
	h := New(BuildInfo{}).Plugin("p").Hook("request_headers")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			h.Call(time.Since(start), OutcomeContinue)
		}
	})
}

func BenchmarkRecordSession(b *testing.B) {
	rt := New(BuildInfo{}).Route("r")
	tr := &traffic{}
	b.ReportAllocs()
	for range b.N {
		rt.OpenSession(false, tr).End(1000, "client")
	}
}
