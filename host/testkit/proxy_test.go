package testkit_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host"
	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/host/testkit"
)

// StartProxy runs the real proxy on the config it was given (with a
// [server] table added when there is none), serves before it returns, and
// Stop ends Run and closes the listener.
func TestStartProxy(t *testing.T) {
	back := testkit.NameBackend(t, "b")
	conf := fmt.Sprintf("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"t0ken\"\n[[upstream]]\nname = \"u\"\ntargets = [%q]\n[[route]]\nupstream = \"u\"\n", back.URL)
	var gotPath string
	p := testkit.StartProxy(t, conf, func(path string, cfg *config.Config) (testkit.Server, error) {
		gotPath = path
		return host.New(cfg, host.Chains{}, host.Options{})
	})
	if written, err := os.ReadFile(p.Path); err != nil || p.Path != gotPath || !strings.HasSuffix(string(written), conf) ||
		!strings.HasPrefix(string(written), "[server]\nlisten = \"127.0.0.1:0\"\n") {
		t.Fatalf("config file %s (given %s): %q, %v", p.Path, gotPath, written, err)
	}
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") || !strings.HasPrefix(p.Admin, "http://127.0.0.1:") {
		t.Fatalf("URL %q, Admin %q", p.URL, p.Admin)
	}
	if status, body, _ := testkit.Get(t, testkit.Client(), p.URL+"/x"); status != 200 || body != "b /x" {
		t.Fatalf("through the proxy: %d %q", status, body)
	}
	if status, _, _ := testkit.Get(t, testkit.Client(), p.Admin+"/healthz", "Authorization", "Bearer t0ken"); status != 200 {
		t.Fatalf("admin /healthz: %d", status)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL, "http://"), time.Second); err == nil {
		c.Close()
		t.Error("the proxy listener still accepts after Stop")
	}
}
