// Package config reads and validates proxy.toml, the user's contract with
// Sluice. Key names here are stable: users' files depend on them.
//
// Load and Parse decode strictly (an unknown key is an error), apply the
// defaults documented on each field, and validate the whole file, reporting
// every problem with the file name, the key path (route[2].upstream) and its
// line.
package config

import (
	"runtime"
	"time"
)

// Config is a whole proxy.toml.
type Config struct {
	Server    Server     `toml:"server"`
	Admin     Admin      `toml:"admin"`
	Upstreams []Upstream `toml:"upstream"`
	Routes    []Route    `toml:"route"`
	Plugins   []Plugin   `toml:"plugin"`
	Shared    Shared     `toml:"shared"`
}

// Server is the [server] table: the client-facing listener.
type Server struct {
	// Listen is the client-facing address, "host:port". Default "127.0.0.1:8080".
	Listen string `toml:"listen"`
	// TLSCert and TLSKey, both set, terminate TLS (HTTP/2 offered over ALPN).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Timeouts guard against slow or idle clients.
	//
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	// Default 10s.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 0
	// (off): uploads may stream for as long as they need.
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds writing a whole response. Default 0 (off): streamed
	// responses (SSE) may last for as long as they need.
	WriteTimeout Duration `toml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request. Default 120s.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers together, exactly:
	// a request head of this many bytes is served, one byte more gets 431.
	// Default 64KiB, at least 8KiB.
	MaxHeaderBytes Size `toml:"max_header_bytes"`
	// ClientBodyTimeout bounds the idle time between two reads of a
	// request body: a client that stops sending its body for this long is
	// cut off (408 when no response has started) and its upstream
	// connection is closed. Default 60s; "0s" off.
	ClientBodyTimeout Duration `toml:"client_body_timeout"`
	// SendTimeout bounds the idle time between two writes of a response to
	// the client: a client that stops reading for this long is cut off and
	// its upstream connection is closed. Default 60s; "0s" off.
	SendTimeout Duration `toml:"send_timeout"`
	// TrustedProxies lists the peers (CIDRs or addresses) whose
	// X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded
	// headers are kept and extended; from any other peer they are replaced.
	// Default none.
	TrustedProxies []string `toml:"trusted_proxies"`
	// EscapedSlashes is what a request path with an encoded slash or a
	// backslash (%2F, %5C, a literal \) gets: "reject" (default, 400), "keep"
	// (forwarded encoded; routing treats it as data, not a separator) or
	// "decode" (turned into "/" before normalization).
	EscapedSlashes string `toml:"escaped_slashes"`
	// MergeSlashes merges runs of "/" in request paths into one. Default
	// true.
	MergeSlashes bool `toml:"merge_slashes"`
	// ShutdownGrace bounds a graceful shutdown: in-flight requests get this
	// long to finish, and WebSockets are closed with 1001. Default 10s.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// ReloadGrace is how long a WebSocket that a reload can no longer serve
	// as it is (its route or upstream target is gone, or its route gained
	// message hooks while the session relays raw bytes) keeps running
	// before it is closed with 1001, so the client reconnects into the new
	// config. Default 5s; "0s" closes such sessions at once.
	ReloadGrace Duration `toml:"reload_grace"`
	// WebSocket holds the defaults for proxied WebSocket sessions.
	WebSocket WebSocket `toml:"websocket"`
}

// WebSocket tunes the WebSocket relay ([server.websocket]).
type WebSocket struct {
	// MaxMessageSize is the largest message relayed; a larger one closes the
	// session with 1009. Default 1MiB.
	MaxMessageSize Size `toml:"max_message_size"`
	// IdleTimeout closes a session with no message in either direction for
	// this long. Default 0 (off): pings already detect dead peers.
	IdleTimeout Duration `toml:"idle_timeout"`
	// PingInterval is how often the relay pings both sides. Default 30s;
	// "0s" turns pings off.
	PingInterval Duration `toml:"ping_interval"`
	// HandshakeTimeout bounds dialling the upstream and its handshake.
	// Default 10s.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	// WriteTimeout bounds how long a write to a peer may wait for the peer
	// to read: a peer that stops reading for this long is cut off and the
	// other side gets 1001. Default 10s; it cannot be turned off.
	WriteTimeout Duration `toml:"write_timeout"`
	// WriteBuffer caps the kernel send buffer of each WebSocket connection:
	// what a peer that does not read can hold in the proxy. Default 256KiB.
	WriteBuffer Size `toml:"write_buffer"`
	// Compression enables permessage-deflate. Default true.
	Compression bool `toml:"compression"`
	// CompressionContextTakeover lets peers keep their compression context
	// between messages in message mode, at 32 KiB per such peer. Default
	// true; false asks them to reset it for every message.
	CompressionContextTakeover bool `toml:"compression_context_takeover"`
}

// Admin is the [admin] table: health, readiness, metrics and reload.
type Admin struct {
	// Listen is the admin address. Default "" (no admin listener). An address
	// that is not loopback requires Token.
	Listen string `toml:"listen"`
	// Token, when set, is required on every admin request as
	// "Authorization: Bearer <token>".
	Token string `toml:"token"`
}

// Upstream is one [[upstream]]: a named group of targets.
type Upstream struct {
	// Name is how routes refer to the upstream. Required, unique.
	Name string `toml:"name"`
	// Targets are base URLs, "http://host:port" or "https://host:port", with
	// an optional path prefix. At least one.
	Targets []string `toml:"targets"`
	// Balance is "round_robin" (default) or "least_conn".
	Balance string `toml:"balance"`
	// ConnectTimeout bounds dialling a target. Default 5s.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// ResponseTimeout bounds waiting for a target's response headers once
	// the request is sent; past it the client gets 504. Default 30s.
	ResponseTimeout Duration `toml:"response_timeout"`
	// MaxIdleConns is the number of idle keep-alive connections kept per
	// target. Default 256.
	MaxIdleConns int `toml:"max_idle_conns"`
	// ReadTimeout bounds the idle time between two reads of a response
	// body: a target that stalls for this long ends the client's response
	// as an error (never as a clean short body). Default 60s.
	ReadTimeout Duration `toml:"read_timeout"`
	// SendTimeout bounds the idle time between two writes of a request
	// (headers and body) to a target: past it the client gets 504 and the
	// connection is closed. Default 60s.
	SendTimeout Duration `toml:"send_timeout"`
	// Health configures active health checks ([upstream.health]).
	Health Health `toml:"health"`
	// PassiveFailures takes a target out after this many consecutive
	// connection errors, for PassiveEjectFor. Default 3; 0 turns passive
	// ejection off.
	PassiveFailures int `toml:"passive_failures"`
	// PassiveEjectFor is how long a passively ejected target stays out.
	// Default 10s.
	PassiveEjectFor Duration `toml:"passive_eject_for"`
}

// Health configures active health checks; an empty Path disables them.
type Health struct {
	// Path is requested with GET on each target; a 2xx or 3xx is healthy.
	Path string `toml:"path"`
	// Interval between checks of one target. Default 5s.
	Interval Duration `toml:"interval"`
	// Timeout of one check. Default 2s.
	Timeout Duration `toml:"timeout"`
	// HealthyThreshold is the number of consecutive successes that bring a
	// target back in. Default 2.
	HealthyThreshold int `toml:"healthy_threshold"`
	// UnhealthyThreshold is the number of consecutive failures that take a
	// target out. Default 3.
	UnhealthyThreshold int `toml:"unhealthy_threshold"`
}

// Route is one [[route]]: a match and what to do with it.
type Route struct {
	// Name identifies the route in logs and filter chains. Default: host
	// (or "*") followed by path_prefix, e.g. "api.example.com/v1" or "*/".
	Name string `toml:"name"`
	// Host matches the request's host, ignoring port and case: an exact name,
	// "*.example.com" (any subdomain), or "*" / empty (any host). An exact
	// host beats a wildcard.
	Host string `toml:"host"`
	// PathPrefix matches the start of the request path; the longest prefix
	// wins. Default "/".
	PathPrefix string `toml:"path_prefix"`
	// Upstream names the [[upstream]] to proxy to. Exactly one of Upstream
	// and Redirect is set.
	Upstream string `toml:"upstream"`
	// Redirect is an absolute http(s) URL to redirect to.
	Redirect string `toml:"redirect"`
	// Status is the redirect status: 301, 302 (default), 303, 307 or 308.
	Status int `toml:"status"`
	// KeepPath appends the request's path and query to Redirect.
	KeepPath bool `toml:"keep_path"`
	// Plugins names the [[plugin]]s that filter this route, in chain order.
	Plugins []string `toml:"plugins"`
	// Upgrades lists the Upgrade tokens the route proxies as protocol
	// switches, lower case. Default ["websocket"]; an empty list allows
	// none. Any other token is removed from the forwarded request.
	Upgrades []string `toml:"upgrades"`
	// ForwardRawPath sends the upstream the path as the client wrote it,
	// while routing and filters still use the normalized path.
	ForwardRawPath bool `toml:"forward_raw_path"`
}

// Plugin is one [[plugin]]: a WebAssembly filter module and its settings.
type Plugin struct {
	// Name is how routes refer to the plugin. Required, unique.
	Name string `toml:"name"`
	// Module is the path of the .wasm file. Required.
	Module string `toml:"module"`
	// SHA256, when set (64 hex digits), pins the module's content.
	SHA256 string `toml:"sha256"`
	// OnError is "deny" (default: fail closed) or "allow" (fail open).
	OnError string `toml:"on_error"`
	// MemoryLimit caps each instance's linear memory. Default 16MiB.
	MemoryLimit Size `toml:"memory_limit"`
	// Timeout bounds one hook call. Default 10ms.
	Timeout Duration `toml:"timeout"`
	// PoolSize is the number of instances kept ready. Default (0):
	// GOMAXPROCS*2, filled in by Parse.
	PoolSize int `toml:"pool_size"`

	// The quotas below bound what the host keeps for the plugin's guests;
	// a guest that exceeds one misuses the ABI and on_error applies (except
	// LogRate, whose extra lines are dropped and counted).

	// StackLimit caps each instance's call stack; a guest that recurses
	// deeper traps. Default 1MiB.
	StackLimit Size `toml:"stack_limit"`
	// StateMaxBytes caps the keys and values of one request's or one
	// WebSocket connection's state (state_set). Default 64KiB.
	StateMaxBytes Size `toml:"state_max_bytes"`
	// StateMaxKeys caps the keys of one request's or connection's state.
	// Default 64.
	StateMaxKeys int `toml:"state_max_keys"`
	// SharedMaxBytes caps the keys and values the plugin keeps in the
	// shared store (shared_set, shared_add). Default 4MiB.
	SharedMaxBytes Size `toml:"shared_max_bytes"`
	// SharedMaxKeys caps the plugin's keys in the shared store. Default
	// 16384.
	SharedMaxKeys int `toml:"shared_max_keys"`
	// LogRate is how many log lines a second the plugin's guests may write
	// (log and WASI stdout/stderr together, with a burst of as many); the
	// rest are dropped and counted. Default 100.
	LogRate int `toml:"log_rate"`
	// MaxInjectedMessages caps the messages one on_message call may inject.
	// Default 16.
	MaxInjectedMessages int `toml:"max_injected_messages"`
	// MaxInjectedBytes caps the payload bytes one on_message call may
	// inject. Default 1MiB.
	MaxInjectedBytes Size `toml:"max_injected_bytes"`
	// MaxLocalResponse caps the body of a local response (send_response).
	// Default 1MiB.
	MaxLocalResponse Size `toml:"max_local_response"`
	// MaxBodyBuffer is the largest request or response body the proxy holds
	// in memory for the plugin when its module asks for buffered bodies.
	// Default 0: bodies are never buffered for it (get_body reads -1), so a
	// module cannot make the proxy buffer bodies unless the operator allows
	// it here. A larger request body gets 413, a larger response 502.
	MaxBodyBuffer Size `toml:"max_body_buffer"`
	// MaxModuleSize refuses a larger .wasm file before it is read whole.
	// Default 16MiB.
	MaxModuleSize Size `toml:"max_module_size"`
	// CompileTimeout bounds compiling the module at load or reload.
	// Default 10s.
	CompileTimeout Duration `toml:"compile_timeout"`
	// BreakerFailures is how many hook calls in a row may fail (trap, time
	// out or misuse the ABI) before the plugin trips: its on_error policy
	// then applies without running guest code until the backoff passes.
	// Default 5.
	BreakerFailures int `toml:"breaker_failures"`
	// BreakerBackoff is how long the plugin stays tripped the first time;
	// each failed probe doubles it, up to BreakerMaxBackoff. Defaults 1s
	// and 1m.
	BreakerBackoff    Duration `toml:"breaker_backoff"`
	BreakerMaxBackoff Duration `toml:"breaker_max_backoff"`
	// Config is handed to the filter as JSON.
	Config map[string]any `toml:"config"`
	// Pos is where the plugin is written, so that an error the filter
	// reports about its config can name the line. Parse fills it; a
	// hand-built Config may leave it zero.
	Pos Position `toml:"-"`
}

// Position locates a [[plugin]] and its config table in a config file.
type Position struct {
	// File is the config file's name as given to Parse.
	File string
	// Line is the line of the [[plugin]] header; ConfigLine that of its
	// config table (0 when it has none).
	Line, ConfigLine int
	// ConfigKeys maps each key written in the config table, dotted from
	// the table ("tokens", "limits.burst"), to its line.
	ConfigKeys map[string]int
}

// Duration is a time.Duration written as a Go duration string ("2s").
type Duration struct{ time.Duration }

// Size is a byte count written as an integer or with a unit ("16MiB", "64KiB").
type Size int64

// Defaults of a [[plugin]]'s settings left at zero. This package is their
// one owner: Parse fills them in, and the plugins loader applies
// WithDefaults to a config built by hand.
const (
	DefaultPluginTimeout           = 10 * time.Millisecond
	DefaultPluginMemoryLimit       = 16 << 20
	DefaultPluginMaxModuleSize     = 16 << 20
	DefaultPluginCompileTimeout    = 10 * time.Second
	DefaultPluginBreakerFailures   = 5
	DefaultPluginBreakerBackoff    = time.Second
	DefaultPluginBreakerMaxBackoff = time.Minute
)

// WithDefaults returns p with the settings left at zero set to their
// defaults: on_error "deny", memory_limit 16MiB, timeout 10ms,
// pool_size GOMAXPROCS*2, max_module_size 16MiB, compile_timeout 10s,
// breaker_failures 5, breaker_backoff 1s, breaker_max_backoff 1m, and the
// quotas' defaults (quota.go).
func (p Plugin) WithDefaults() Plugin {
	if p.OnError == "" {
		p.OnError = "deny"
	}
	if p.MemoryLimit == 0 {
		p.MemoryLimit = DefaultPluginMemoryLimit
	}
	if p.Timeout.Duration == 0 {
		p.Timeout.Duration = DefaultPluginTimeout
	}
	if p.PoolSize == 0 {
		p.PoolSize = runtime.GOMAXPROCS(0) * 2
	}
	if p.MaxModuleSize == 0 {
		p.MaxModuleSize = DefaultPluginMaxModuleSize
	}
	if p.CompileTimeout.Duration == 0 {
		p.CompileTimeout.Duration = DefaultPluginCompileTimeout
	}
	if p.BreakerFailures == 0 {
		p.BreakerFailures = DefaultPluginBreakerFailures
	}
	if p.BreakerBackoff.Duration == 0 {
		p.BreakerBackoff.Duration = DefaultPluginBreakerBackoff
	}
	if p.BreakerMaxBackoff.Duration == 0 {
		p.BreakerMaxBackoff.Duration = DefaultPluginBreakerMaxBackoff
	}
	pluginQuotaDefaults(&p)
	return p
}
