//go:build race

package soak

// raceEnabled: sessions do fewer operations under the race detector.
const raceEnabled = true
