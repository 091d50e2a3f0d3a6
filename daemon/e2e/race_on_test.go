//go:build race

package e2e

// raceEnabled builds the binaries under test with the race detector too, so
// the daemon's own races fail the end-to-end tests.
const raceEnabled = true
