//go:build !race

package plugins

import "time"

// raceEnabled is set when the race detector slows everything, the compiler
// included, several times over.
const raceEnabled = false

// raceSlowdown stretches a time limit that covers CPU work (compiling,
// scanning) when the race detector runs, which makes such work 10-20
// times slower.
func raceSlowdown(d time.Duration) time.Duration {
	if raceEnabled {
		return 20 * d
	}
	return d
}
