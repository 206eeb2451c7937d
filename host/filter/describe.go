package filter

import "time"

// PluginInfo describes one plugin of a generation's filter set, for the
// status page on the admin listener.
type PluginInfo struct {
	Name string `json:"name"`
	// Module is the module file as the config names it; SHA256 the hex
	// sha256 of the bytes that were compiled.
	Module string `json:"module"`
	SHA256 string `json:"sha256"`
	// Hooks are the hooks the chain calls ("request_headers", "message"...).
	Hooks []string `json:"hooks"`
	// OnError is "deny" or "allow"; Timeout the deadline of a hook call;
	// MemoryLimit the cap on an instance's memory, in bytes.
	OnError     string        `json:"on_error"`
	Timeout     time.Duration `json:"timeout_ns"`
	MemoryLimit uint64        `json:"memory_limit"`
	// PoolSize is the most instances the plugin keeps; Live those that
	// exist now, Idle those of them waiting for a call.
	PoolSize int `json:"pool_size"`
	Live     int `json:"live"`
	Idle     int `json:"idle"`
}

// Describer is implemented by a filter set (the io.Closer that builds a
// generation's chains with them) that can describe its plugins.
type Describer interface {
	DescribePlugins() []PluginInfo
}
