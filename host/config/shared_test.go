package config

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestSharedDefaults(t *testing.T) {
	c, err := Parse([]byte(base), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Shared
	if s.Backend != "memory" || s.KeyPrefix != "sluice:" || s.CallTimeout.Duration != 50*time.Millisecond ||
		s.HookBudget.Duration != 100*time.Millisecond || s.DialTimeout.Duration != time.Second ||
		s.ReadTimeout.Duration != 500*time.Millisecond || s.WriteTimeout.Duration != 500*time.Millisecond ||
		s.PoolSize != 10*runtime.GOMAXPROCS(0) {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestSharedRedis(t *testing.T) {
	t.Setenv("SLUICE_TEST_REDIS_PASSWORD", "pw")
	c, err := Parse([]byte(base+`
[shared]
backend = "redis"
addresses = ["10.0.0.1:6379", "10.0.0.2:6379"]
username = "sluice"
password_env = "SLUICE_TEST_REDIS_PASSWORD"
key_prefix = "edge:"
call_timeout = "20ms"
hook_budget = "40ms"
pool_size = 64
  [shared.tls]
  enabled = true
  server_name = "redis.internal"
`), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Shared
	if s.Password() != "pw" || len(s.Addresses) != 2 || s.KeyPrefix != "edge:" || s.PoolSize != 64 ||
		s.CallTimeout.Duration != 20*time.Millisecond || !s.TLS.Enabled || s.TLS.ServerName != "redis.internal" {
		t.Fatalf("parsed: %+v", s)
	}
}

func TestSharedErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"backend", `backend = "etcd"`, `p.toml:11: shared.backend: must be "memory" or "redis"`},
		{"no address", `backend = "redis"`, "shared.address: backend = \"redis\" needs address or addresses"},
		{"both", "backend = \"redis\"\naddress = \"a:1\"\naddresses = [\"b:1\"]", "shared.addresses: set address or addresses, not both"},
		{"bad address", "backend = \"redis\"\naddress = \"redis\"", `shared.address: bad address "redis"`},
		{"memory with address", `address = "a:1"`, `shared.address: only applies to backend = "redis"`},
		{"unknown key", "backend = \"redis\"\naddress = \"a:1\"\npassword = \"x\"", `p.toml:13: shared.password: unknown key "password"`},
		{"unset env", "backend = \"redis\"\naddress = \"a:1\"\npassword_env = \"SLUICE_TEST_NOT_SET\"", "shared.password_env: environment variable SLUICE_TEST_NOT_SET is not set"},
		{"cluster db", "backend = \"redis\"\naddresses = [\"a:1\"]\ndb = 2", "shared.db: a Redis Cluster has only database 0"},
		{"budget", "backend = \"redis\"\naddress = \"a:1\"\ncall_timeout = \"1s\"\nhook_budget = \"10ms\"", "shared.hook_budget: must be at least call_timeout"},
		{"timeout", "backend = \"redis\"\naddress = \"a:1\"\ncall_timeout = \"2m\"", "shared.call_timeout: must be more than 0s and at most 1m0s"},
		{"pool", "backend = \"redis\"\naddress = \"a:1\"\npool_size = -1", "shared.pool_size: must be from 1"},
		{"tls off", "backend = \"redis\"\naddress = \"a:1\"\n[shared.tls]\nca = \"ca.pem\"", "shared.tls.enabled: TLS settings are given but enabled is false"},
		{"wrong type", "backend = \"redis\"\naddress = 6379", "shared.address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+"\n[shared]\n"+tc.toml+"\n"), "p.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
