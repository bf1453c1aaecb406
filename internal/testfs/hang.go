package testfs

import (
	"testing"
	"time"
)

// WithinAMinute runs f on a goroutine and returns its error, failing the
// test with hang if f has not returned within a minute: a guard against
// a call blocked for good (on a FIFO, in a cycle), not a measurement.
func WithinAMinute(t testing.TB, hang string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal(hang)
		return nil
	}
}
