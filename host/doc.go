// Package host is the proxy core of Sluice: listeners, routing, the HTTP
// reverse proxy, upstream pools with balancing and health checks, TLS,
// timeouts and graceful shutdown.
//
// A request arrives in ServeHTTP (proxy.go), is routed (route.go), runs
// the route's filter chain, and goes to a target through the upstream's
// client (package host/internal/upstream, which also prepares the
// forwarding headers and dials). A WebSocket upgrade is handed to the relay
// (package host/internal/wsrelay) by upgrade.go, which tracks the session
// for reloads and shutdown (sessions.go).
//
// It knows nothing about how filters run: at each hook point it calls the
// route's filter.Chain (package host/filter), which the plugins package
// implements with WebAssembly and tests implement in Go. Package
// host/reload decides when the files changed enough to build a new
// generation.
//
// Everything built from one config (routing table, upstream pools with their
// transports and health checkers, chains) is a generation. Proxy serves from
// the current generation; Apply builds the next one and swaps it in while
// requests keep flowing. A request holds its generation until it ends, and a
// replaced generation is closed once drained. WebSocket sessions outlive
// generations: they take their route's chain from the current one.
package host
