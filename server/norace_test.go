//go:build !race

package server_test

// raceEnabled: the race detector is on, and every allocation costs more.
const raceEnabled = false
