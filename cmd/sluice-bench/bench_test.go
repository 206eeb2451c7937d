package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
)

// wrkSample is wrk 4.1's report with --latency, as the harness reads it.
const wrkSample = `Running 1s test @ http://127.0.0.1:41131/small
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  512.10us  14.95ms   90.12%
    Req/Sec    31.41k     1.20k   33.01k    80.00%
  Latency Distribution
     50%  890.00us
     75%    1.10ms
     90%    1.40ms
     99%   24.95ms
  31258 requests in 1.00s, 5.96MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  31258.12
Transfer/sec:      5.96MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 31258, Seconds: 1, RPS: 31258.12, P50: 890e-6, P99: 24.95e-3, Non2xx: 7, SockErrors: 3}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if r.Requests != want.Requests || !near(r.Seconds, want.Seconds) || !near(r.RPS, want.RPS) ||
		!near(r.P50, want.P50) || !near(r.P99, want.P99) || r.Non2xx != want.Non2xx || r.SockErrors != want.SockErrors {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused"); err == nil {
		t.Error("parseWrk accepted output without results")
	}
}

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want summary
	}{
		{[]float64{3, 1, 2}, summary{Median: 2, Min: 1, Max: 3, N: 3}},
		{[]float64{4, 1, 3, 2}, summary{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{nil, summary{}},
	} {
		if got := summarize(c.in); got != c.want {
			t.Errorf("summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestFmtNum(t *testing.T) {
	for in, want := range map[float64]string{1234567: "1,234,567", 12.345: "12", -4321: "-4,321", 999: "999"} {
		if got := fmtNum(in, 0); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", in, got, want)
		}
	}
	if got := fmtNum(1234.5678, 2); got != "1,234.57" {
		t.Errorf("fmtNum(1234.5678, 2) = %q", got)
	}
}

// TestSluiceConfigParses feeds every generated Sluice config to the real
// config loader, so a schema change that breaks the benchmark fails here.
func TestSluiceConfigParses(t *testing.T) {
	l := &lab{root: "/repo", backend: "127.0.0.1:9000"}
	for _, s := range []spec{specSluice, specHeaders, specAuthHeaders, specNoop, specRedact} {
		tg := &target{spec: s, Addr: "127.0.0.1:8080", AdminAddr: "127.0.0.1:9901"}
		cfg, err := config.Parse([]byte(l.sluiceConfig(tg)), s.Name+".toml")
		if err != nil {
			t.Errorf("%s: %v\n%s", s.Name, err, l.sluiceConfig(tg))
			continue
		}
		if len(cfg.Routes) != 1 || len(cfg.Routes[0].Plugins) != len(s.Plugins) || len(cfg.Plugins) != len(s.Plugins) {
			t.Errorf("%s: parsed %d routes, plugins %v", s.Name, len(cfg.Routes), cfg.Routes)
		}
		if cfg.Upstreams[0].MaxIdleConns != upstreamKeepalive {
			t.Errorf("%s: max_idle_conns = %d", s.Name, cfg.Upstreams[0].MaxIdleConns)
		}
	}
}

func TestWSMessage(t *testing.T) {
	for _, n := range []int{64, 16 << 10} {
		m := wsMessage(n)
		if len(m) != n || !bytes.Contains(m, []byte(`"password":"`+secretValue+`"`)) || !bytes.Contains(m, []byte("secret")) {
			t.Errorf("wsMessage(%d) = %d bytes: %.80s", n, len(m), m)
		}
	}
}

// TestBackendAndClients drives the real backend over loopback sockets with
// the harness's own HTTP and WebSocket clients.
func TestBackendAndClients(t *testing.T) {
	srv := httptest.NewServer(newBackend())
	defer srv.Close()
	get := func(path string) []byte {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	if n := len(get("/small")); n != smallBody {
		t.Errorf("/small: %d bytes", n)
	}
	if n := len(get("/1m")); n != bigBody {
		t.Errorf("/1m: %d bytes", n)
	}
	resp, err := http.Post(srv.URL+"/upload", "application/octet-stream", strings.NewReader(strings.Repeat("x", 12345)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "12345\n" {
		t.Errorf("/upload answered %q", b)
	}

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	rtt, err := wsRTT(ctx, url, 64, 2, 200*time.Millisecond, 100)
	if err != nil {
		t.Fatal(err)
	}
	if rtt.Msgs != 100 || rtt.P50 <= 0 || rtt.P99 < rtt.P50 {
		t.Errorf("wsRTT = %+v", rtt)
	}
	rate, err := wsPipelined(ctx, url, 1024, 4, 4, 200*time.Millisecond)
	if err != nil || rate <= 0 {
		t.Errorf("wsPipelined = %v, %v", rate, err)
	}
	closeAll, err := holdIdle(ctx, url, 50, 8)
	if err != nil {
		t.Fatal(err)
	}
	closeAll()
}

func TestProcsStopsWhatItStarted(t *testing.T) {
	p := newProcs()
	cmd, err := p.start(t.TempDir()+"/log", -1, nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if p.exited(pid) {
		t.Fatal("sleep exited at once")
	}
	if rssBytes(pid) <= 0 {
		t.Error("no VmRSS for a running process")
	}
	start := time.Now()
	p.stopAll()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Error("process still exists after stopAll")
	}
	if time.Since(start) > 2*time.Second {
		t.Error("stop waited for the SIGKILL grace: SIGTERM was not delivered")
	}
}

func TestFreePort(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("free port %d cannot be listened on: %v", port, err)
	}
	l.Close()
}
