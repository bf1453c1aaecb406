package reader_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A follower that lags behind moves on to the next segment of the listing
// it took before, by name, without listing the directory again: when the
// log was emptied in place and begun again meanwhile, and the new log
// reached those numbers, it read the new log's segments as the old log's
// next ones, skipping the new log's first segments (and a cursor stored
// after them). It must stop with ErrLogReplaced before returning a record
// of the new log, in order (Next) as in bulk.

// beginAgain replaces the log in dir by a new one of segs segments: made
// in another directory, its files renamed over the old ones, the old
// log's other files removed. A log emptied in place and begun again ends
// the same; done so, no open of the reader's finds a name missing, which
// would make it list the directory again.
func beginAgain(t *testing.T, dir string, segs uint64) {
	t.Helper()
	fresh := t.TempDir()
	writeSegments(t, fresh, "new", segs)
	des, err := os.ReadDir(fresh)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{}
	for _, de := range des {
		keep[de.Name()] = true
		if err := os.Rename(filepath.Join(fresh, de.Name()), filepath.Join(dir, de.Name())); err != nil {
			t.Fatal(err)
		}
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range old {
		if !keep[de.Name()] {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// followUntilStopped follows r until it stops, failing on a record of the new log,
// and returns the error that stopped it.
func followUntilStopped(t *testing.T, r *reader.Reader) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		for r.Next() {
			if p := r.Record().Payload; bytes.HasPrefix(p, []byte("new")) {
				t.Fatalf("record of the new log returned at %v: %.10q", r.Record().Position, p)
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
		if err := r.Wait(ctx); err != nil {
			return err
		}
	}
}

func TestLaggingFollowerStopsWhenLogBegunAgain(t *testing.T) {
	dir := t.TempDir()
	writeSegments(t, dir, "old", 4)
	r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatalf("no first record: %v", r.Err())
	}
	beginAgain(t, dir, 6)
	if err := followUntilStopped(t, r); !errors.Is(err, reader.ErrLogReplaced) {
		t.Fatalf("lagging follower after the log was begun again in place: %v", err)
	}
	if r.SameLog() {
		t.Fatal("SameLog true after the log was begun again")
	}
}

func TestLaggingBulkFollowerStopsWhenLogBegunAgain(t *testing.T) {
	dir := t.TempDir()
	writeSegments(t, dir, "old", 6)
	begun := false
	r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond,
		Bulk: beginAgainInBulk(t, dir, 8, &begun)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = followUntilStopped(t, r)
	if !begun {
		t.Fatal("no bulk output")
	}
	if !errors.Is(err, reader.ErrLogReplaced) {
		t.Fatalf("lagging bulk follower after the log was begun again in place: %v", err)
	}
}

// beginAgainInBulk is a Bulk that begins the log in dir again (of segs
// segments) at its first output, setting *begun, and fails the test on
// output of the new log.
func beginAgainInBulk(t *testing.T, dir string, segs uint64, begun *bool) *reader.Bulk {
	return &reader.Bulk{Workers: 1, Append: lineOf, Write: func(p []byte, _ reader.Position) error {
		if !*begun {
			// While the run holds the next segments of the old
			// listing: the planner opens the rest by name.
			*begun = true
			beginAgain(t, dir, segs)
		}
		if i := bytes.Index(p, []byte(`"new`)); i >= 0 {
			t.Fatalf("record of the new log written in bulk: %.40s", p[max(i-30, 0):])
		}
		return nil
	}}
}

// A segment 1 put back from a backup into a log whose oldest segments
// retention had removed (the follower's first listing did not have it),
// once retention removed the segment the follower was at too, was taken
// for a new log's segment 1, whatever its creation time, and stopped the
// follower ("segment 1 was made since (created <before segment 4>)"). A
// segment 1 created before the oldest segment the first listing held is
// that log's own: the follower goes on, and reads the next writer's
// records.
func TestFollowNotStoppedBySegmentOneRestored(t *testing.T) {
	dir := t.TempDir()
	last := writeSegments(t, dir, "old", 4)
	one, err := os.ReadFile(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	removeSegments(t, dir, 1, 3)
	r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ; r.Next(); n++ {
	}
	if n == 0 || r.Err() != nil {
		t.Fatalf("%d records of segment %d, %v", n, last.Seq, r.Err())
	}
	removeSegments(t, dir, last.Seq, last.Seq)
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), one, 0o640); err != nil {
		t.Fatal(err)
	}
	// A waiting follower lists the directory again once a second: it
	// must have found segment 4 gone before the next writer makes 4
	// again (then "segment 4 was made again", the reader still at it).
	// 1.5 s was too short on a loaded machine (a CI run under -race).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err = r.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait after segment 1 was restored: %v", err)
	}
	next := writeSegments(t, dir, "next", last.Seq+2)
	if err := followUntil(t, r, next); err != nil {
		t.Fatal(err)
	}
}

// removeSegments removes segments from to to of the log in dir, as
// retention does.
func removeSegments(t *testing.T, dir string, from, to uint64) {
	t.Helper()
	for s := from; s <= to; s++ {
		if err := os.Remove(filepath.Join(dir, segment.FileName(s))); err != nil {
			t.Fatal(err)
		}
	}
}

// followUntil follows r until it returns the record at pos.
func followUntil(t *testing.T, r *reader.Reader, pos segment.Position) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		for r.Next() {
			if r.Record().Position == pos {
				return nil
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
		if err := r.Wait(ctx); err != nil {
			return err
		}
	}
}
