package config

import (
	"strings"
	"testing"
	"time"
)

// server.reload_grace defaults to 5s, "0s" means at once, and a negative
// value is refused.
func TestReloadGrace(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
	}{
		{"", 5 * time.Second},
		{`reload_grace = "0s"`, 0},
		{`reload_grace = "250ms"`, 250 * time.Millisecond},
	} {
		cfg, err := Parse([]byte("[server]\n"+tc.line+"\n"), "proxy.toml")
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := cfg.Server.ReloadGrace.Duration; got != tc.want {
			t.Errorf("%q: reload_grace %v, want %v", tc.line, got, tc.want)
		}
	}
	_, err := Parse([]byte("[server]\nreload_grace = \"-1s\"\n"), "proxy.toml")
	if err == nil || !strings.Contains(err.Error(), "proxy.toml:2: server.reload_grace") {
		t.Errorf("negative reload_grace: %v", err)
	}
}
