// Package host is the proxy core of Sluice: listeners, routing, the HTTP
// reverse proxy, the WebSocket relay, upstream pools with balancing and
// health checks, TLS, timeouts and graceful shutdown.
//
// It knows nothing about how filters run: at each hook point it calls the
// route's Chain (see filter.go), which the plugins package implements with
// WebAssembly and tests implement in Go.
//
// Everything built from one config (routing table, upstream pools with their
// transports and health checkers, chains) is a generation. Proxy serves from
// the current generation; Apply builds the next one and swaps it in while
// requests keep flowing. A request holds its generation until it ends, and a
// replaced generation is closed once drained. WebSocket sessions outlive
// generations: they take their route's chain from the current one.
package host
