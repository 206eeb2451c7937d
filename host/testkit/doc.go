// Package testkit is what the tests of Sluice share, the way net/http/httptest
// serves tests of HTTP code: real backends on 127.0.0.1 (an HTTP backend
// that names itself, one that counts its connections, a WebSocket backend
// that echoes and misbehaves on request), WebSocket client helpers, a Go
// filter.Chain that counts its calls, and the builder of filter modules
// (Go, TinyGo, WebAssembly text) with one rule for missing toolchains.
//
// Every helper takes the test's testing.TB, cleans up after the test and
// fails it with a message that starts with "testkit:" when a wait runs out.
package testkit
