//go:build !race

package conformance

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false
