package host

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/filter"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// pxProxy is a proxy running on 127.0.0.1 for a test.
type pxProxy struct {
	*Proxy
	url  string // "http://127.0.0.1:port"
	kit  *testkit.Proxy
	logs *pxLogBuffer
}

// pxStart runs a Proxy with chains on conf (see testkit.StartProxy: a
// missing [server] table listens on 127.0.0.1:0), logging as JSON into
// px.logs, and stops it when the test ends.
func pxStart(t testing.TB, conf string, chains map[string]filter.Chain) *pxProxy {
	t.Helper()
	px := &pxProxy{logs: &pxLogBuffer{}}
	log := slog.New(slog.NewJSONHandler(px.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	px.kit = testkit.StartProxy(t, conf, func(_ string, cfg *config.Config) (testkit.Server, error) {
		p, err := New(cfg, Chains{Routes: chains}, Options{Logger: log})
		px.Proxy = p
		return p, err
	})
	px.url = px.kit.URL
	return px
}

// stop shuts the proxy down and waits for Run to return.
func (px *pxProxy) stop(t testing.TB) {
	t.Helper()
	if err := px.kit.Stop(); err != nil {
		t.Errorf("Run: %v", err)
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
