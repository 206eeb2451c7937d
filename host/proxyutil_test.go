package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
)

// pxProxy is a proxy running on 127.0.0.1 for a test.
type pxProxy struct {
	*Proxy
	url    string // "http://127.0.0.1:port"
	cancel context.CancelFunc
	done   chan error
	logs   *pxLogBuffer
}

// pxStart parses conf (server.listen defaults to 127.0.0.1:0), runs a proxy
// and stops it when the test ends.
func pxStart(t testing.TB, conf string, chains map[string]filter.Chain) *pxProxy {
	t.Helper()
	if !strings.Contains(conf, "[server]") {
		conf = "[server]\nlisten = \"127.0.0.1:0\"\n" + conf
	}
	cfg, err := config.Parse([]byte(conf), "test.toml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &pxLogBuffer{}
	p, err := New(cfg, chains, Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	px := &pxProxy{Proxy: p, cancel: cancel, done: make(chan error, 1), logs: logs}
	scheme := "http"
	if cfg.Server.TLSCert != "" {
		scheme = "https"
	}
	px.url = scheme + "://" + p.Addr().String()
	go func() { px.done <- p.Run(ctx) }()
	t.Cleanup(func() { px.stop(t) })
	return px
}

// stop shuts the proxy down and waits for Run to return.
func (px *pxProxy) stop(t testing.TB) {
	px.cancel()
	select {
	case err := <-px.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		px.done <- nil // later calls return at once
	case <-time.After(15 * time.Second):
		t.Errorf("Run did not return after shutdown")
	}
}

// pxLogBuffer collects JSON log lines.
type pxLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *pxLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the log records whose msg is msg.
func (b *pxLogBuffer) records(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// pxBackend is an upstream server that answers with its name, so tests see
// which target served a request.
func pxBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s", name, r.URL.RequestURI())
	}))
	t.Cleanup(s.Close)
	return s
}

// pxGet does a GET and returns status, body and header; it fails the test on
// a transport error.
func pxGet(t *testing.T, c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// pxClient is a client that does not follow redirects.
func pxClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// pxDeadAddr returns a loopback address where nothing listens.
func pxDeadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// pxEventually polls cond until it holds or the deadline passes.
func pxEventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustParse(t *testing.T, conf string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(conf), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
