//go:build !race

package plugins

// compileSlowdown is 1 without the race detector: compile_timeout is what the
// config says (see race_on.go).
const compileSlowdown = 1
