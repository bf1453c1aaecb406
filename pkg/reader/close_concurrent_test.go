package reader_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
)

// guard bounds how long a test waits for an event that must come, so
// that a reader that never returns fails the test instead of hanging it.
const guard = 30 * time.Second

// TestCloseUnblocksWait: Close from other goroutines (two at once) while
// a follower of a live, idle log is in Wait wakes it: Wait returns
// ErrClosed, although its next poll is an hour away, and the segment is
// released. Run under -race, it also shows that Close touches nothing the
// Wait uses.
func TestCloseUnblocksWait(t *testing.T) {
	dir := t.TempDir()
	l := newLiveLog(t, dir, segSize)
	defer l.close()
	for i := range 10 {
		l.append(payload(i))
	}
	held := mappedFrom(t, dir) // the live log's own mapping
	r := followToTail(t, dir, reader.Options{Follow: true, PollMin: time.Hour, PollMax: time.Hour}, 10)
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		close(started)
		done <- r.Wait(context.Background())
	}()
	<-started
	// Close while the Wait is in progress, so that its wake-up is what is
	// tested, not a Wait that finds the reader closed on entry.
	for deadline := time.Now().Add(30 * time.Second); !reader.InWait(r); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Wait did not start within 30s")
		}
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wantClosed(t, done)
	wg.Wait()
	if r.Next() || !errors.Is(r.Err(), reader.ErrClosed) {
		t.Fatalf("after Close: Next returned a record or Err = %v", r.Err())
	}
	if n := mappedFrom(t, dir); n != held {
		t.Fatalf("%d mappings of the log's files after Close, %d before Open", n, held)
	}
}

// followToTail opens the log in dir with opts and reads its n records.
func followToTail(t *testing.T, dir string, opts reader.Options, n int) *reader.Reader {
	t.Helper()
	r, err := reader.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for r.Next() {
		got++
	}
	if got != n || r.Err() != nil {
		t.Fatalf("%d records, Err %v", got, r.Err())
	}
	return r
}

// TestNextAfterClose: after an ordinary Close, Next returns false and Err
// returns ErrClosed (a loop on Next tells a Close from the end of the
// log), whether the reader was stopped mid-log or had reached its end;
// Wait returns ErrClosed; a second Close returns nil.
func TestNextAfterClose(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 2000, true)
	for _, stopAt := range []int{10, 2000} {
		r, err := reader.Open(dir, reader.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for n < stopAt && r.Next() {
			n++
		}
		if n != stopAt || r.Err() != nil {
			t.Fatalf("%d records, Err %v", n, r.Err())
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if r.Next() {
			t.Fatalf("after %d records: Next after Close returned a record", stopAt)
		}
		if !errors.Is(r.Err(), reader.ErrClosed) {
			t.Fatalf("after %d records: Err after Close = %v, want ErrClosed", stopAt, r.Err())
		}
		if err := r.Wait(context.Background()); !errors.Is(err, reader.ErrClosed) {
			t.Fatalf("Wait after Close = %v", err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
	}
}

// heldCtx is a context whose Err blocks until release is closed: it holds
// a Wait at a point of its poll (its sleep asks Err first) for as long as
// a test needs.
type heldCtx struct {
	context.Context
	release chan struct{}
}

func (c heldCtx) Err() error {
	<-c.release
	return nil
}

// TestCloseReturnsAfterWaitReleased: a Close from another goroutine that
// lands while a follower's Wait is in its poll returns only once the
// segment that Wait held is released (unmapped), so that a caller may
// unmount, remove or count what the reader held once Close returns;
// before, it returned at once and the Wait released the segment later,
// dropping any error from that. The Wait is held inside its poll by its
// context (synctest tells when both goroutines are blocked for good).
func TestCloseReturnsAfterWaitReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		writeLog(t, dir, 10, false) // no writer: the follower waits for one
		r := followToTail(t, dir, reader.Options{Follow: true}, 10)
		if mappedFrom(t, dir) == 0 {
			t.Fatal("the follower maps nothing of the log at its tail")
		}
		ctx := heldCtx{context.Background(), make(chan struct{})}
		waited, closed := make(chan error, 1), make(chan error, 1)
		go func() { waited <- r.Wait(ctx) }()
		synctest.Wait() // the Wait is in its poll, in ctx.Err
		go func() { closed <- r.Close() }()
		synctest.Wait() // Close has returned, or waits for the Wait
		select {
		case <-closed:
			if m := mappedFrom(t, dir); m != 0 {
				t.Errorf("Close returned with %d mappings of the log still held by the Wait", m)
			}
		default:
		}
		close(ctx.release)
		if err := <-waited; !errors.Is(err, reader.ErrClosed) {
			t.Fatalf("Wait = %v, want ErrClosed", err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if m := mappedFrom(t, dir); m != 0 {
			t.Fatalf("%d mappings of the log after Close", m)
		}
	})
}

// TestClosesDuringWaitsAfterClose: Wait may be called again after a
// Close, and returns ErrClosed; Close may be called again, from other
// goroutines too. A Close that landed in such a later Wait waited for it
// to release the segments again, and that Wait's release wrote the
// result the first Close, waiting in the Wait it stopped, might still be
// reading: a data race, which -race reported in most rounds of this test.
// Each round's first Close lands in a Wait that sleeps in its poll (an
// hour); the later ones in the Waits the reading goroutine keeps making.
func TestClosesDuringWaitsAfterClose(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 10, false)
	for range 5 {
		closesDuringWaitsAfterClose(t, dir)
	}
}

func closesDuringWaitsAfterClose(t *testing.T, dir string) {
	r := followToTail(t, dir, reader.Options{Follow: true, PollMin: time.Hour, PollMax: time.Hour}, 10)
	first, done := make(chan error, 1), make(chan struct{})
	var stop atomic.Bool
	go func() {
		defer close(done)
		first <- r.Wait(context.Background())
		for !stop.Load() {
			if err := r.Wait(context.Background()); !errors.Is(err, reader.ErrClosed) {
				t.Errorf("Wait after Close = %v", err)
				return
			}
		}
	}()
	for deadline := time.Now().Add(guard); !reader.InWait(r); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Wait did not start within 30s")
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	// Not joined with that Close before the others: that would order its
	// read of what releasing gave before them, hiding the race.
	if err := <-first; !errors.Is(err, reader.ErrClosed) {
		t.Fatalf("Wait = %v, want ErrClosed", err)
	}
	for range 100000 {
		if err := r.Close(); err != nil {
			t.Fatalf("a later Close = %v", err)
		}
	}
	stop.Store(true)
	<-done
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if m := mappedFrom(t, dir); m != 0 {
		t.Fatalf("%d mappings of the log after Close", m)
	}
}
