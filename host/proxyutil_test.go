package host

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
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
	p, err := New(cfg, Chains{Routes: chains}, Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
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

func mustParse(t *testing.T, conf string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(conf), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
