package reader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestCloseFromBulkWrite: a Close called from Bulk.Write (the goroutine
// calling Next) stops the reader there, as one from OnDamage does: Write
// is not called again, Next returns false (not the first record of the
// unsealed last segment, which Next reads), Err returns ErrClosed, and
// every segment of the bulk run is released once Next has returned. So
// too when Write then returns an error (an output it tore down with the
// reader): the Close stopped the reader first, and Err reports the first
// reason (it was Write's error).
func TestCloseFromBulkWrite(t *testing.T) {
	for _, writeErr := range []error{nil, errors.New("output closed")} {
		t.Run(fmt.Sprint("Write returns ", writeErr), func(t *testing.T) {
			dir := t.TempDir()
			writeLogWith(t, dir, 3000, false, mixedPayload)
			var r *reader.Reader
			calls := 0
			r, err := reader.Open(dir, reader.Options{Bulk: &reader.Bulk{Range: 4096, Append: lineOf,
				Write: func([]byte, reader.Position) error {
					if calls++; calls == 3 {
						if err := r.Close(); err != nil {
							t.Errorf("Close from Write: %v", err)
						}
						return writeErr
					}
					return nil
				}}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Next() {
				t.Fatal("Next returned a record after Close")
			}
			if calls != 3 || !errors.Is(r.Err(), reader.ErrClosed) {
				t.Fatalf("%d Write calls (want 3), Err %v; want ErrClosed", calls, r.Err())
			}
			if n := mappedFrom(t, dir); n != 0 {
				t.Fatalf("%d mappings of the log's files left", n)
			}
			if err := r.Close(); err != nil {
				t.Fatalf("second Close = %v", err)
			}
		})
	}
}

// TestCloseDuringBulkWriteInWait: a follower's Wait that finds sealed
// segments reads them in bulk, calling Write from Wait. A Close from
// another goroutine while Write runs returns at once; Write is not called
// again, Wait returns ErrClosed, and the bulk run's segments are released
// by then (none is unmapped under the workers: -race and the mapping
// count). Err says ErrClosed too, also when that Write then fails (its
// output went with the reader): the Close came first (Err was Write's
// error).
func TestCloseDuringBulkWriteInWait(t *testing.T) {
	for _, writeErr := range []error{nil, errors.New("output closed")} {
		t.Run(fmt.Sprint("Write returns ", writeErr), func(t *testing.T) { closeDuringBulkWriteInWait(t, writeErr) })
	}
}

func closeDuringBulkWriteInWait(t *testing.T, writeErr error) {
	dir := t.TempDir()
	rest := splitLog(t, dir, nil)
	inWait, entered, release := false, make(chan struct{}), make(chan struct{})
	afterClose := 0
	r, err := reader.Open(dir, reader.Options{Follow: true, Bulk: &reader.Bulk{Range: 4096, Append: lineOf,
		Write: func([]byte, reader.Position) error {
			if !inWait {
				return nil // segment 1, from Next
			}
			select {
			case <-release:
				afterClose++
				return nil
			default:
				close(entered)
				<-release
				return writeErr
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	done := waitInBulk(t, r, func() { inWait = true }, rest, entered)
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Close waited for Write")
	}
	close(release)
	wantClosed(t, done)
	if afterClose != 0 {
		t.Fatalf("Write called %d times after Close", afterClose)
	}
	if !errors.Is(r.Err(), reader.ErrClosed) {
		t.Fatalf("Err = %v, want ErrClosed", r.Err())
	}
	if n := mappedFrom(t, dir); n != 0 {
		t.Fatalf("%d mappings of the log's files left", n)
	}
}

// splitLog writes a sealed log of a few segments in a directory of its
// own, after damage (if not nil) changed it there, and moves its segment
// 1 into dir. rest moves the others in, newest first, so that a follower
// finds them all sealed at once.
func splitLog(t *testing.T, dir string, damage func(src string, all []rec)) (rest func()) {
	t.Helper()
	src := t.TempDir()
	all := writeLogWith(t, src, 3000, true, mixedPayload)
	last := all[len(all)-1].pos.Seq
	if last < 4 {
		t.Fatalf("only %d segments", last)
	}
	if damage != nil {
		damage(src, all)
	}
	move := func(seq uint64) {
		if err := os.Rename(filepath.Join(src, segment.FileName(seq)), filepath.Join(dir, segment.FileName(seq))); err != nil {
			t.Fatal(err)
		}
	}
	move(1)
	return func() {
		for seq := last; seq >= 2; seq-- {
			move(seq)
		}
	}
}

// waitInBulk reads r to its end, calls inWait, starts r.Wait on another
// goroutine, hands the log the rest of its segments, and returns once
// entered is closed: the Wait is reading them in bulk.
func waitInBulk(t *testing.T, r *reader.Reader, inWait func(), rest func(), entered <-chan struct{}) <-chan error {
	t.Helper()
	for r.Next() {
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	inWait()
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background()) }()
	rest()
	select {
	case <-entered:
	case <-time.After(guard):
		t.Fatal("Wait did not read the new segments in bulk")
	}
	return done
}

// wantClosed waits for the result of a Wait that a Close must end.
func wantClosed(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, reader.ErrClosed) {
			t.Fatalf("Wait = %v, want ErrClosed", err)
		}
	case <-time.After(guard):
		t.Fatal("Wait did not return after Close")
	}
}

// TestBulkWritePanicThenClose: a Bulk.Write that panics (or a test's
// t.Fatal in it) ends the Next that called it there, in the middle of a
// bulk run; a caller that recovers can still Close, and then nothing of
// the run is left: no mapping of a segment and no descriptor of one (its
// planner and workers, which hold them, have stopped).
func TestBulkWritePanicThenClose(t *testing.T) {
	dir := t.TempDir()
	writeLogWith(t, dir, 3000, true, mixedPayload)
	calls := 0
	r, err := reader.Open(dir, reader.Options{Bulk: &reader.Bulk{Range: 4096, Workers: 2, Append: lineOf,
		Write: func([]byte, reader.Position) error {
			if calls++; calls == 3 {
				panic("Write failed")
			}
			return nil
		}}})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Next returned without Write's panic")
			}
		}()
		r.Next()
	}()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := mappedFrom(t, dir); n != 0 {
		t.Errorf("%d mappings of the log's files left", n)
	}
	if n := openIn(t, dir); n != 0 {
		t.Errorf("%d descriptors of the log's files left open", n)
	}
}

// openIn counts this process's open file descriptors of files in dir.
func openIn(t testing.TB, dir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && filepath.Dir(p) == dir {
			n++
		}
	}
	return n
}
