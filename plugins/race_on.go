//go:build race

package plugins

// compileSlowdown stretches compile_timeout in binaries built with the race
// detector (the test binaries), which compiles WebAssembly five to ten
// times slower: a 2 MB Go module that compiles in one to three seconds
// takes more than the default ten under -race on a busy machine. A binary
// built for production never has the tag, so its limit is the configured
// one.
const compileSlowdown = 10
