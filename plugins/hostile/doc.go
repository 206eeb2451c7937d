// Package hostile holds the hostile-guest suite: WebAssembly text modules
// (testdata/*.wat), one per way a filter can attack the proxy, each run
// against the real proxy.
//
// A case builds the sluice binary, writes a proxy.toml with two routes — a
// hostile one filtered by the attacking module and a benign one filtered by
// a well-behaved module — asks `sluice check` for the worst-case memory of
// the filters, and starts the proxy as a subprocess under a memory cap.
// While clients attack the hostile route, a prober keeps calling the benign
// route and a sampler reads the proxy's resident memory from /proc. The case
// passes when the proxy lives, every attack got the documented failure, the
// benign route answered every probe in time, and the resident memory stayed
// under the proxy's own footprint plus the bound `sluice check` printed.
//
// A new class is a module in testdata (its comment says what it does and
// what the proxy must answer) and an entry in the cases table of
// hostile_test.go: the module, extra [[plugin]] or [server] keys, the
// attack (wantStatus, wantBody, wantClose, or attackEach over variants) and
// a pattern the proxy's log must match. The proxy runs with -log-level warn,
// and it logs one hook failure a second per plugin, so a pattern for a case
// with variants lists each variant's message.
//
// The package has no code of its own: everything is in its tests.
//
//	go test ./plugins/hostile/ -v
//
// Each case needs wat2wasm (wabt); without it the suite is skipped, unless
// the CI environment variable is set, which makes it fail.
package hostile
