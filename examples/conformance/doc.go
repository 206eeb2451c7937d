// Package conformance is the conformance kit of the Sluice filter ABI: one
// table of scenarios (a plugin config, HTTP requests and WebSocket messages,
// and the result each must produce) run against every build of every example
// filter — the Go SDK built with standard Go and with TinyGo, the Rust SDK,
// and the C filter written directly against the ABI — through the real proxy.
//
// The package has only tests. Its subtests are named
// TestConformance/<example>/<scenario>/<language>:
//
//	cd examples && go test ./conformance/                          # everything
//	cd examples && go test ./conformance/ -run 'TestConformance/headers/.*/rust'
//
// Each language's modules must be built first (make filters, or
// examples/build.sh, examples/build-rust.sh and examples/build-c.sh). A
// missing module skips that language, naming it and why, unless the CI
// environment variable is set: then it fails. The run ends with a list of
// the languages skipped and why; go test shows it with -v, or when run in
// this directory (go test shows a passing package's output only then).
//
// An author of another SDK points the kit at a module of their own with
// SLUICE_CONFORMANCE_MODULE_<example>=path/to/module.wasm (for instance
// SLUICE_CONFORMANCE_MODULE_headers): the module runs every scenario of that
// example as the language "custom" (SLUICE_CONFORMANCE_LANG renames it).
// abi/ABI.md, "Running the conformance kit against your own module", says
// more.
//
// BenchmarkHook and BenchmarkInstantiate measure each build through the real
// plugin host; TestNumbersTable prints them as the table of sdk/README.md.
package conformance
