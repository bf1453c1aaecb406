package writer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSyncAlwaysCommitAfterGiveUpSaysCommitted: with SyncAlways, a
// Commit whose record is stored and whose flush then meets a Close that
// gives up on another reservation returned Close's own error
// ("reservations still open at close"), naming no record, wrapping
// neither ErrClosed nor anything else a caller could test: a refused
// Commit (ErrFailed before the store) and this committed record read
// alike, and a caller retrying writes the record twice. The error now
// wraps ErrNotDurable and names the record, which is in the log.
func TestSyncAlwaysCommitAfterGiveUpSaysCommitted(t *testing.T) {
	dir := t.TempDir()
	g := &msyncGateFS{entered: make(chan struct{}), result: make(chan error)}
	w, err := Open(dir, Options{SegmentSize: 64 << 10, Sync: SyncAlways, CloseTimeout: time.Millisecond, FS: g})
	if err != nil {
		t.Fatal(err)
	}
	open, err := w.Reserve(8) // never finished: Close gives up on it
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Reserve(len("committed"))
	if err != nil {
		t.Fatal(err)
	}
	copy(r.Bytes(), "committed")
	pos := r.Position()
	commitErr := make(chan error, 1)
	go func() { commitErr <- r.Commit() }() // stored, then held in its msync
	<-g.entered
	closeErr := make(chan error, 1)
	go func() { closeErr <- w.Close() }()
	for w.failed.Load() == nil { // Close has given up and poisoned the writer
		time.Sleep(100 * time.Microsecond)
	}
	g.result <- nil
	if err := <-closeErr; !errors.Is(err, ErrReservationsOpen) {
		t.Fatalf("Close: %v, want ErrReservationsOpen", err)
	}
	err = <-commitErr
	_ = open.Abort()
	if !errors.Is(err, ErrNotDurable) || !errors.Is(err, ErrReservationsOpen) || errors.Is(err, ErrClosed) ||
		!strings.Contains(err.Error(), pos.String()) {
		t.Fatalf("Commit: %v; want ErrNotDurable naming the record at %v, wrapping Close's ErrReservationsOpen", err, pos)
	}
	if got := readAll(t, reopened(t, dir)); string(got[pos]) != "committed" {
		t.Fatalf("the record at %v is not in the log after recovery: %q", pos, got[pos])
	}
}
