//go:build !race

package filtertool

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false
