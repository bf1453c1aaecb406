package reader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A follower that has found no frame yet has no segment of its own to
// compare with: at the tail of a log (Last(0), a Skip of every record)
// whose newest segment is the empty one a closing writer leaves, or
// waiting in no segment for a number past the log's end (a position
// after the last record). With the log emptied in place and begun again,
// it hung on the old segment's mapping (new log below its number) or went
// on into the new log past its first segments. It must stop with
// ErrLogReplaced before returning a record of the new log. (One started
// on an empty live log, in segment 1: TestFollowerInAnEmptySegmentOne.)
func TestFollowerWithoutAFrameStopsWhenLogBegunAgain(t *testing.T) {
	pastEnd := unreadStarts[0]
	pastEnd.name, pastEnd.old = "At past the end", func(t *testing.T, dir string) reader.Options {
		writeSegments(t, dir, "old", 4)
		return reader.Options{Start: reader.At(segment.Position{Seq: 9, Offset: segment.HeaderSize})}
	}
	for _, start := range append(unreadStarts[1:len(unreadStarts):len(unreadStarts)], pastEnd) {
		for _, segs := range []uint64{1, 3, 8} {
			t.Run(fmt.Sprintf("%s/new log of %d", start.name, segs), func(t *testing.T) {
				dir := t.TempDir()
				opts := start.old(t, dir)
				opts.Follow, opts.PollMax = true, 10*time.Millisecond
				r, err := reader.Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				waitIdle(t, r)
				testfs.Empty(t, dir)
				writeSegments(t, dir, "new", segs)
				err = followUntilStopped(t, r)
				if !errors.Is(err, reader.ErrLogReplaced) {
					t.Fatalf("follower after the log was begun again in place: %v", err)
				}
				if r.SameLog() {
					t.Fatal("SameLog true after the log was begun again")
				}
			})
		}
	}
}

// unreadStarts make a log and return where a reader starts in it without
// finding a frame: in the one empty segment a writer that appended
// nothing leaves; after four sealed segments, at the empty fifth a closing
// writer leaves for the next, reached without reading a frame (Last(0),
// and Skip of every record, which passes the sealed segments by their
// footers).
var unreadStarts = []struct {
	name string
	old  func(t *testing.T, dir string) reader.Options
}{
	{"empty live log", func(t *testing.T, dir string) reader.Options {
		w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return reader.Options{}
	}},
	{"Last(0)", func(t *testing.T, dir string) reader.Options {
		writeSegments(t, dir, "old", 4)
		return reader.Options{Start: reader.Last(0)}
	}},
	{"Skip all", func(t *testing.T, dir string) reader.Options {
		writeSegments(t, dir, "old", 4)
		recs, _ := readAll(t, dir, reader.Options{})
		return reader.Options{Start: reader.Skip(uint64(len(recs)))}
	}},
}

// waitIdle drains r and has it wait long enough to list the directory
// again, failing if it returns a record or stops.
func waitIdle(t *testing.T, r *reader.Reader) {
	t.Helper()
	waitIdleFor(t, r, 1200*time.Millisecond)
}

// waitRelisted is waitIdle for long enough that the reader has listed the
// directory again since a change the test made in it: while a follower
// waits it reads the whole directory only once a second (refresh), and
// on a loaded machine the 1.2 s of waitIdle can end before that listing.
func waitRelisted(t *testing.T, r *reader.Reader) {
	t.Helper()
	waitIdleFor(t, r, 3*time.Second)
}

func waitIdleFor(t *testing.T, r *reader.Reader, d time.Duration) {
	t.Helper()
	for r.Next() {
		if bytes.HasPrefix(r.Record().Payload, []byte("new")) {
			t.Fatalf("record of the new log at %v", r.Record().Position)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on the old log: %v (record: %v)", err, r.Next())
	}
}

// followIdle opens a follower on dir with opts, polling every 10ms at
// most and failing the test on damage, closed when the test ends, and
// waits for it to be idle (waitIdle).
func followIdle(t *testing.T, dir string, opts reader.Options) *reader.Reader {
	t.Helper()
	opts.Follow, opts.PollMax = true, 10*time.Millisecond
	opts.OnDamage = func(d reader.Damage) { t.Errorf("damage: %v", d) }
	r, err := reader.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	waitIdle(t, r)
	return r
}

// What a follower without a frame must go on through: a writer that
// continues in the empty segment it is at, retention removing the old
// segments and compress-finished archiving them, the next writer numbering
// on.
func TestFollowerWithoutAFrameNotStoppedByServiceLife(t *testing.T) {
	for _, start := range unreadStarts {
		t.Run(start.name, func(t *testing.T) {
			dir := t.TempDir()
			r := followIdle(t, dir, start.old(t, dir))
			retain(t, dir, 1)
			waitIdle(t, r)
			from := uint64(1)
			if l, err := segment.List(dir); err == nil && len(l.Segments) > 0 {
				from = l.Segments[0].Seq
			}
			last := writeSegments(t, dir, "next", from+2)
			var got []segment.Position
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				for r.Next() {
					got = append(got, r.Record().Position)
				}
				if err := r.Err(); err != nil {
					t.Fatalf("after %d records: %v", len(got), err)
				}
				if len(got) > 0 && got[len(got)-1] == last {
					break
				}
				if err := r.Wait(ctx); err != nil {
					t.Fatalf("after %d records, want up to %v: %v", len(got), last, err)
				}
			}
			// The next writer's first record: at from:64 when the old
			// writer left the empty segment it prepared (retain keeps it,
			// the newest), in the segment after from when it closed before
			// preparing one (a loaded machine) and from is sealed.
			all, _ := readAll(t, dir, reader.Options{})
			first := slices.IndexFunc(all, func(x rec) bool { return bytes.HasPrefix(x.payload, []byte("next")) })
			if first < 0 || got[0] != all[first].pos {
				t.Fatalf("first record at %v; the next writer's first is record %d of the %d in the log", got[0], first, len(all))
			}
			if !r.SameLog() {
				t.Fatal("SameLog false")
			}
		})
	}
}

// A replay (no Follow) opens the segments after the one it reads by the
// names it listed, and lists the directory again when it reaches the end
// of its listing: with the log begun again meanwhile, it read the new
// log's segments past its number as the old log's next ones, skipping the
// new log's first ones. It must stop as a follower does, in order and in
// bulk.
func TestReplayStopsWhenLogBegunAgain(t *testing.T) {
	for _, segs := range []uint64{3, 8} {
		t.Run(fmt.Sprintf("new log of %d", segs), func(t *testing.T) {
			dir := t.TempDir()
			writeSegments(t, dir, "old", 4)
			r, err := reader.Open(dir, reader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !r.Next() {
				t.Fatalf("no first record: %v", r.Err())
			}
			beginAgain(t, dir, segs)
			for r.Next() {
				if p := r.Record().Payload; bytes.HasPrefix(p, []byte("new")) {
					t.Fatalf("record of the new log returned at %v: %.10q", r.Record().Position, p)
				}
			}
			if err := r.Err(); !errors.Is(err, reader.ErrLogReplaced) {
				t.Fatalf("replay after the log was begun again in place: %v", err)
			}
			if r.SameLog() {
				t.Fatal("SameLog true after the log was begun again")
			}
		})
	}
	t.Run("bulk", func(t *testing.T) {
		dir := t.TempDir()
		writeSegments(t, dir, "old", 6)
		begun := false
		r, err := reader.Open(dir, reader.Options{Bulk: beginAgainInBulk(t, dir, 8, &begun)})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
		}
		if !begun {
			t.Fatal("no bulk output")
		}
		if err := r.Err(); !errors.Is(err, reader.ErrLogReplaced) {
			t.Fatalf("bulk replay after the log was begun again in place: %v", err)
		}
	})
}
