package reader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// writeSegments appends records of about 1 KiB through a real writer
// until it has written in segs segments, closes it and returns the
// position of the last record.
func writeSegments(t *testing.T, dir, tag string, segs uint64) segment.Position {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	var pos segment.Position
	for i := 0; pos.Seq < segs; i++ {
		if pos, err = w.Append(fmt.Appendf(nil, "%s %d %s", tag, i, strings.Repeat("x", 1000))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return pos
}

// A log whose every file is deleted in place (the directory stays) and
// begun again by a new writer starts at segment 1 again. A follower that
// was at segment N of the old log waited for a segment after N: it never
// returned the new log's records up to N, without a word, and hung if
// the new log stayed below N. It must stop with ErrLogReplaced instead,
// before returning any record of the new log, and SameLog must tell a
// caller not to store its position. Whether the new log stays below
// where the follower was or goes past it, and whatever the new writer's
// clock says.
func TestFollowStopsWhenLogBegunAgainInPlace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		begin func(t *testing.T, dir string)
	}{
		{"new log below", func(t *testing.T, dir string) { writeSegments(t, dir, "new", 2) }},
		{"new log past", func(t *testing.T, dir string) { writeSegments(t, dir, "new", 7) }},
		{"new writer's clock behind", func(t *testing.T, dir string) {
			im := segment.NewImage(1, segSize, time.Now().Add(-time.Hour).UnixNano())
			if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), im, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			last := writeSegments(t, dir, "old", 4)
			r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for r.Next() {
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err = r.Wait(ctx) // the follower waits at the end of the old log
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Wait at the end of the old log: %v", err)
			}
			testfs.Empty(t, dir)
			tc.begin(t, dir)

			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				err = r.Wait(ctx)
				if err != nil || !r.Next() {
					break
				}
				t.Fatalf("record of the new log returned at %v: %.10q", r.Record().Position, r.Record().Payload)
			}
			if err == nil {
				err = r.Err()
			}
			if !errors.Is(err, reader.ErrLogReplaced) || !strings.Contains(err.Error(), dir) ||
				!strings.Contains(err.Error(), fmt.Sprintf("went back below %d", last.Seq)) {
				t.Fatalf("follower at %v after the log was begun again in place: %v", last, err)
			}
			if r.SameLog() {
				t.Fatal("SameLog true after the log was begun again")
			}
		})
	}
}

// What is not a log begun again must not stop a follower: writers closing
// (removing the files they made ahead) and opening again, every sealed
// segment replaced by its archive by compress-finished (the follower's
// own too, and directory reads racing the rename and unlink), and
// retention removing the oldest segments, the ones the follower was at
// included, all while it follows.
func TestFollowNotStoppedByArchiveRetentionAndReopen(t *testing.T) {
	dir := t.TempDir()
	fw := follow(t, dir, reader.Options{PollMax: time.Millisecond})
	stop := make(chan struct{})
	janitor := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				janitor <- nil
				return
			default:
			}
			if _, err := archive.Run(context.Background(), dir, archive.Options{Jobs: 1}); err != nil {
				janitor <- err
				return
			}
			// Retention: all but the newest 4 segments, oldest first.
			l, err := segment.List(dir)
			if err != nil {
				janitor <- err
				return
			}
			for _, e := range l.Segments[:max(len(l.Segments)-4, 0)] {
				for _, p := range []string{filepath.Join(dir, segment.FileName(e.Seq)), filepath.Join(dir, segment.ArchiveName(e.Seq))} {
					if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
						janitor <- err
						return
					}
				}
			}
		}
	}()
	var last segment.Position
	for round := range 6 {
		last = writeSegments(t, dir, fmt.Sprint("round ", round), last.Seq+3)
	}
	close(stop)
	if err := <-janitor; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := fw.waitFor(t, 0, 0)
		if n := len(got); n > 0 && got[n-1].pos == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower did not reach the last record, %v", last)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fw.stop(t) // fails the test if the follower stopped with an error
	got := fw.waitFor(t, 0, 0)
	for i := 1; i < len(got); i++ {
		if got[i].pos.Compare(got[i-1].pos) <= 0 {
			t.Fatalf("record %d at %v after %v", i, got[i].pos, got[i-1].pos)
		}
	}
	for _, d := range fw.damage() {
		if d.Kind != reader.DamageRemoved {
			t.Errorf("damage: %v", d)
		}
	}
	if last.Seq < 15 {
		t.Fatalf("only %d segments", last.Seq)
	}
}

// The segment a follower is at, archived by compress-finished and then
// removed by retention with every older one, leaves nothing below it and
// a later writer continues the numbers: not a log begun again. The
// follower goes on with the next writer's records.
func TestFollowNotStoppedWhenItsSegmentIsArchivedAndRemoved(t *testing.T) {
	dir := t.TempDir()
	last := writeSegments(t, dir, "a", 3)
	r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// drain returns the position of the last record read until the
	// follower has waited long enough to list the directory again (once a
	// second while it waits; 3 s for a loaded machine).
	drain := func(step string) (at segment.Position) {
		t.Helper()
		for {
			for r.Next() {
				at = r.Record().Position
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := r.Wait(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				return at
			}
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
	}
	if at := drain("first writer"); at != last {
		t.Fatalf("follower at %v, want %v", at, last)
	}
	if _, err := archive.Run(context.Background(), dir, archive.Options{Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, segment.ArchiveName(last.Seq))); err != nil {
		t.Fatalf("the follower's segment was not archived: %v", err)
	}
	if at := drain("archived"); at != (segment.Position{}) {
		t.Fatalf("record at %v after archiving", at)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Segments[:len(l.Segments)-1] { // oldest first
		if err := os.Remove(e.Path); err != nil {
			t.Fatal(err)
		}
	}
	if at := drain("removed"); at != (segment.Position{}) {
		t.Fatalf("record at %v after removal", at)
	}
	next := writeSegments(t, dir, "b", last.Seq+2)
	if at := drain("next writer"); at != next {
		t.Fatalf("follower at %v, want the next writer's last record %v", at, next)
	}
	if !r.SameLog() {
		t.Fatal("SameLog false")
	}
}
