// Package sluice is the Go SDK for Sluice filters: WebAssembly modules that
// the Sluice proxy runs at its hook points for HTTP requests, responses and
// individual WebSocket messages.
//
// A filter is a main package that registers handlers in init and builds as a
// WASI reactor with TinyGo or Go 1.24 or later:
//
//	package main
//
//	import sluice "github.com/sluiceproxy/sluice/sdk/go"
//
//	func init() {
//		sluice.OnRequestHeaders(func(req sluice.Request) sluice.Action {
//			if req.Header().Get("X-Api-Key") == "" {
//				return sluice.Respond(401, nil, []byte("missing key\n"))
//			}
//			return sluice.Continue
//		})
//	}
//
//	func main() {} // required, but never called in a reactor
//
// Register handlers in init, not in main: a reactor runs package
// initialisers when the host instantiates it, and never calls main.
//
// The SDK exports every hook of the ABI and reports the registered ones
// through sluice_hooks, so the host skips the rest. In particular a route
// whose filters register no OnMessage handler relays WebSockets without
// parsing frames.
//
// # Instances and state
//
// The proxy pools instances of a filter and calls any of them for any
// request or message. Package variables therefore hold only configuration
// and caches; anything that belongs to one request or one WebSocket
// connection goes in State, and anything shared by all connections in Shared.
// A filter runs one hook at a time and must not start goroutines (TinyGo
// builds filters with -scheduler=none).
//
// # Native tests
//
// Outside WebAssembly the host functions go to an in-memory host; the
// sluicetest package provides it, so filters are unit-tested with go test.
package sluice
