//go:build !race

package faults

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = false
