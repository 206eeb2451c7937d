//go:build race

package plugins

// raceEnabled is set when the race detector slows everything, the compiler
// included, several times over.
const raceEnabled = true
