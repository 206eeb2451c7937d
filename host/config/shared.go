package config

import (
	"fmt"
	"os"
	"time"
)

// Shared is the [shared] table: the store behind the shared_* host
// functions, which filters use for state shared across requests,
// connections and (with Redis) proxies.
type Shared struct {
	// Backend is "memory" (default: in this process only) or "redis" (one
	// Redis, Sentinel or Cluster shared by every proxy that points at it).
	Backend string `toml:"backend"`
	// Address is one Redis "host:port". Exactly one of Address and
	// Addresses is set when Backend is "redis".
	Address string `toml:"address"`
	// Addresses are the seed nodes of a Redis Cluster, or the Sentinels
	// when MasterName is set.
	Addresses []string `toml:"addresses"`
	// MasterName names the Sentinel master set; Addresses are then
	// Sentinels.
	MasterName string `toml:"master_name"`
	// Username is the Redis ACL user. Default: none (the default user).
	Username string `toml:"username"`
	// PasswordEnv names the environment variable that holds the password.
	// The password itself never appears in the file.
	PasswordEnv string `toml:"password_env"`
	// DB is the database number (single node and Sentinel only). Default 0.
	DB int `toml:"db"`
	// KeyPrefix starts every key Sluice writes. Default "sluice:".
	KeyPrefix string `toml:"key_prefix"`
	// TLS, when set, connects over TLS ([shared.tls]).
	TLS SharedTLS `toml:"tls"`
	// DialTimeout bounds connecting to a node. Default 1s.
	DialTimeout Duration `toml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound one socket read or write. Default
	// 500ms each; a call's own deadline (CallTimeout) is usually shorter.
	ReadTimeout  Duration `toml:"read_timeout"`
	WriteTimeout Duration `toml:"write_timeout"`
	// PoolSize is the most connections kept to each node. Default
	// 10*GOMAXPROCS.
	PoolSize int `toml:"pool_size"`
	// CallTimeout is the deadline of one shared_* call (waiting for a pooled
	// connection, the round trip and the reply). A call past it fails, and
	// the plugin's on_error applies. Default 50ms.
	CallTimeout Duration `toml:"call_timeout"`
	// HookBudget is the most time one hook call may spend waiting on the
	// store over all its shared_* calls. The hook's own timeout counts the
	// guest's time only; the wait is bounded here instead. Default 100ms.
	HookBudget Duration `toml:"hook_budget"`
}

// SharedTLS configures TLS to Redis.
type SharedTLS struct {
	// Enabled turns TLS on.
	Enabled bool `toml:"enabled"`
	// CA is a PEM file of the certificate authorities to trust. Default:
	// the system pool.
	CA string `toml:"ca"`
	// Cert and Key, both set, present a client certificate.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `toml:"server_name"`
	// InsecureSkipVerify turns certificate checks off (tests only).
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// Password returns the Redis password from the environment variable named
// by PasswordEnv ("" when it is not set).
func (s Shared) Password() string {
	if s.PasswordEnv == "" {
		return ""
	}
	return os.Getenv(s.PasswordEnv)
}

// Limits of the [shared] values: wide enough for any deployment, narrow
// enough that a typo ("50s" for "50ms") is caught.
const (
	maxSharedTimeout = time.Minute
	maxSharedPool    = 1 << 16
)

func (p *parser) sharedDefaults(s *Shared, gomaxprocs int) {
	if s.Backend == "" {
		s.Backend = "memory"
	}
	if s.KeyPrefix == "" && !p.keys.defined("shared.key_prefix") {
		s.KeyPrefix = "sluice:"
	}
	durDefault(&s.DialTimeout, time.Second, false)
	durDefault(&s.ReadTimeout, 500*time.Millisecond, false)
	durDefault(&s.WriteTimeout, 500*time.Millisecond, false)
	durDefault(&s.CallTimeout, 50*time.Millisecond, false)
	durDefault(&s.HookBudget, 100*time.Millisecond, false)
	if s.PoolSize == 0 {
		s.PoolSize = 10 * gomaxprocs
	}
}

func (p *parser) validateShared(s Shared) {
	switch s.Backend {
	case "memory":
		for _, k := range []string{"address", "addresses", "master_name", "username", "password_env", "db", "tls"} {
			if p.keys.defined("shared." + k) {
				p.errf("shared."+k, "only applies to backend = \"redis\"")
			}
		}
		return
	case "redis":
	default:
		p.errf("shared.backend", "must be \"memory\" or \"redis\", got %q", s.Backend)
		return
	}
	switch {
	case s.Address == "" && len(s.Addresses) == 0:
		p.errf("shared.address", "backend = \"redis\" needs address or addresses")
	case s.Address != "" && len(s.Addresses) > 0:
		p.errf("shared.addresses", "set address or addresses, not both")
	}
	if s.Address != "" {
		p.checkAddr("shared.address", s.Address)
	}
	for i, a := range s.Addresses {
		p.checkAddr(fmt.Sprintf("shared.addresses[%d]", i), a)
	}
	if s.MasterName != "" && len(s.Addresses) == 0 {
		p.errf("shared.master_name", "needs addresses (the Sentinels)")
	}
	if s.DB < 0 || s.DB > 1<<20 {
		p.errf("shared.db", "must be from 0, got %d", s.DB)
	}
	if s.DB != 0 && len(s.Addresses) > 0 && s.MasterName == "" {
		p.errf("shared.db", "a Redis Cluster has only database 0")
	}
	if s.PasswordEnv != "" {
		if _, ok := os.LookupEnv(s.PasswordEnv); !ok {
			p.errf("shared.password_env", "environment variable %s is not set", s.PasswordEnv)
		}
	}
	if (s.TLS.Cert == "") != (s.TLS.Key == "") {
		p.errf("shared.tls", "cert and key go together")
	}
	if (s.TLS.CA != "" || s.TLS.Cert != "" || s.TLS.ServerName != "" || s.TLS.InsecureSkipVerify) && !s.TLS.Enabled {
		p.errf("shared.tls.enabled", "TLS settings are given but enabled is false")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"dial_timeout", s.DialTimeout.Duration},
		{"read_timeout", s.ReadTimeout.Duration},
		{"write_timeout", s.WriteTimeout.Duration},
		{"call_timeout", s.CallTimeout.Duration},
		{"hook_budget", s.HookBudget.Duration},
	} {
		if d.v <= 0 || d.v > maxSharedTimeout {
			p.errf("shared."+d.key, "must be more than 0s and at most %s, got %s", maxSharedTimeout, d.v)
		}
	}
	if s.HookBudget.Duration < s.CallTimeout.Duration {
		p.errf("shared.hook_budget", "must be at least call_timeout (%s), got %s", s.CallTimeout.Duration, s.HookBudget.Duration)
	}
	if s.PoolSize < 1 || s.PoolSize > maxSharedPool {
		p.errf("shared.pool_size", "must be from 1 to %d, got %d", maxSharedPool, s.PoolSize)
	}
}
