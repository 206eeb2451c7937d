// Package config reads and validates proxy.toml, the user's contract with
// Sluice. Key names here are stable: users' files depend on them.
package config

import "time"

// Config is a whole proxy.toml.
type Config struct {
	Server    Server     `toml:"server"`
	Admin     Admin      `toml:"admin"`
	Upstreams []Upstream `toml:"upstream"`
	Routes    []Route    `toml:"route"`
	Plugins   []Plugin   `toml:"plugin"`
}

// Server is the [server] table: the client-facing listener.
type Server struct {
	Listen string `toml:"listen"`
	// TLSCert and TLSKey, both set, terminate TLS (HTTP/2 offered over ALPN).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Timeouts guard against slow or idle clients.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	ReadTimeout       Duration `toml:"read_timeout"`
	WriteTimeout      Duration `toml:"write_timeout"`
	IdleTimeout       Duration `toml:"idle_timeout"`
	MaxHeaderBytes    Size     `toml:"max_header_bytes"`
	// ShutdownGrace bounds a graceful shutdown.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// WebSocket holds the defaults for proxied WebSocket sessions.
	WebSocket WebSocket `toml:"websocket"`
}

// WebSocket tunes the WebSocket relay.
type WebSocket struct {
	MaxMessageSize Size     `toml:"max_message_size"`
	IdleTimeout    Duration `toml:"idle_timeout"`
	PingInterval   Duration `toml:"ping_interval"`
}

// Admin is the [admin] table: health, readiness, metrics and reload.
type Admin struct {
	Listen string `toml:"listen"`
	Token  string `toml:"token"`
}

// Upstream is one [[upstream]]: a named group of targets.
type Upstream struct {
	Name    string   `toml:"name"`
	Targets []string `toml:"targets"`
	Balance string   `toml:"balance"` // "round_robin" (default) or "least_conn"
	// Timeouts for talking to targets.
	ConnectTimeout  Duration `toml:"connect_timeout"`
	ResponseTimeout Duration `toml:"response_timeout"`
	MaxIdleConns    int      `toml:"max_idle_conns"`
	Health          Health   `toml:"health"`
	// PassiveEject takes a target out after this many consecutive
	// connection errors, for PassiveEjectFor.
	PassiveFailures int      `toml:"passive_failures"`
	PassiveEjectFor Duration `toml:"passive_eject_for"`
}

// Health configures active health checks; an empty Path disables them.
type Health struct {
	Path               string   `toml:"path"`
	Interval           Duration `toml:"interval"`
	Timeout            Duration `toml:"timeout"`
	HealthyThreshold   int      `toml:"healthy_threshold"`
	UnhealthyThreshold int      `toml:"unhealthy_threshold"`
}

// Route is one [[route]]: a match and what to do with it.
type Route struct {
	Name       string   `toml:"name"`
	Host       string   `toml:"host"`
	PathPrefix string   `toml:"path_prefix"`
	Upstream   string   `toml:"upstream"`
	Redirect   string   `toml:"redirect"`
	Status     int      `toml:"status"`
	KeepPath   bool     `toml:"keep_path"`
	Plugins    []string `toml:"plugins"`
}

// Plugin is one [[plugin]]: a WebAssembly filter module and its settings.
type Plugin struct {
	Name   string `toml:"name"`
	Module string `toml:"module"`
	SHA256 string `toml:"sha256"`
	// OnError is "deny" (default: fail closed) or "allow" (fail open).
	OnError     string   `toml:"on_error"`
	MemoryLimit Size     `toml:"memory_limit"`
	Timeout     Duration `toml:"timeout"`
	PoolSize    int      `toml:"pool_size"`
	// Config is handed to the filter as JSON.
	Config map[string]any `toml:"config"`
}

// Duration is a time.Duration written as a Go duration string ("2s").
type Duration struct{ time.Duration }

// Size is a byte count written as an integer or with a unit ("16MiB", "64KiB").
type Size int64
