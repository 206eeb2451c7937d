package config

import (
	"strings"
	"testing"
)

func TestPluginQuotaDefaults(t *testing.T) {
	c, err := Parse([]byte(base+"\n[[route]]\nupstream = \"app\"\nplugins = [\"auth\"]\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	pl := c.Plugins[0]
	want := Plugin{
		StackLimit: 1 << 20, StateMaxBytes: 64 << 10, StateMaxKeys: 64,
		SharedMaxBytes: 4 << 20, SharedMaxKeys: 16384, LogRate: 100,
		MaxInjectedMessages: 16, MaxInjectedBytes: 1 << 20, MaxLocalResponse: 1 << 20,
	}
	got := Plugin{
		StackLimit: pl.StackLimit, StateMaxBytes: pl.StateMaxBytes, StateMaxKeys: pl.StateMaxKeys,
		SharedMaxBytes: pl.SharedMaxBytes, SharedMaxKeys: pl.SharedMaxKeys, LogRate: pl.LogRate,
		MaxInjectedMessages: pl.MaxInjectedMessages, MaxInjectedBytes: pl.MaxInjectedBytes,
		MaxLocalResponse: pl.MaxLocalResponse, MaxBodyBuffer: pl.MaxBodyBuffer,
	}
	if got.StackLimit != want.StackLimit || got.StateMaxBytes != want.StateMaxBytes ||
		got.StateMaxKeys != want.StateMaxKeys || got.SharedMaxBytes != want.SharedMaxBytes ||
		got.SharedMaxKeys != want.SharedMaxKeys || got.LogRate != want.LogRate ||
		got.MaxInjectedMessages != want.MaxInjectedMessages || got.MaxInjectedBytes != want.MaxInjectedBytes ||
		got.MaxLocalResponse != want.MaxLocalResponse || got.MaxBodyBuffer != 0 {
		t.Errorf("quota defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestPluginQuotaKeys(t *testing.T) {
	c, err := Parse([]byte(base+`stack_limit = "512KiB"
state_max_bytes = "1KiB"
state_max_keys = 3
shared_max_bytes = "1MiB"
shared_max_keys = 10
log_rate = 5
max_injected_messages = 2
max_injected_bytes = "4KiB"
max_local_response = "8KiB"
max_body_buffer = "2MiB"
[[route]]
upstream = "app"
`), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	pl := c.Plugins[0]
	if pl.StackLimit != 512<<10 || pl.StateMaxBytes != 1<<10 || pl.StateMaxKeys != 3 ||
		pl.SharedMaxBytes != 1<<20 || pl.SharedMaxKeys != 10 || pl.LogRate != 5 ||
		pl.MaxInjectedMessages != 2 || pl.MaxInjectedBytes != 4<<10 ||
		pl.MaxLocalResponse != 8<<10 || pl.MaxBodyBuffer != 2<<20 {
		t.Errorf("quotas not read: %+v", pl)
	}
}

// A bad quota is reported with its key and line.
func TestPluginQuotaErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`stack_limit = "1KiB"`, `p.toml:9: plugin[0].stack_limit: must be from 64KiB to 256MiB, got 1KiB`},
		{`state_max_keys = -1`, `p.toml:9: plugin[0].state_max_keys: must be from 1 to 16777216, got -1`},
		{`shared_max_bytes = "2GiB"`, `p.toml:9: plugin[0].shared_max_bytes: must be from 1B to 1GiB, got 2GiB`},
		{`log_rate = "fast"`, `p.toml:9: plugin[0].log_rate: incompatible types`},
		{`max_body_bufer = "1MiB"`, `p.toml:9: plugin[0].max_body_bufer: unknown key "max_body_bufer"`},
	} {
		t.Run(tc.line, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.line+"\n[[route]]\nupstream = \"app\"\n"), "p.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
