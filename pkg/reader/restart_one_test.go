package reader_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A writer.Open in an existing, empty log directory that fails after it
// published segment 1 (here the directory's fsync after the rename
// fails) removes the file again, and the next Open makes segment 1 anew,
// with another creation time: one log, nothing lost. A follower started
// on the empty live log in between, in that segment 1, took the file
// made again for a new log's and stopped with ErrLogReplaced (tail -f
// exits 2), though it had read nothing: reading the new file from its
// start repeats nothing and loses nothing. It must read every record of
// the file made again and the segments after it, in order. A start past
// the segment's start (an At offset in it, After, records to Skip) holds
// for the file made again, as for a reader opened after the second Open:
// the file it held had no record, so that start named none of it.
func TestFollowerInSegmentOneOfAFailedOpen(t *testing.T) {
	at := func(off int64) segment.Position { return segment.Position{Seq: 1, Offset: off} }
	for _, c := range []struct {
		name  string
		start reader.Start
	}{
		{"First", reader.First()},
		{"At 1:2048", reader.At(at(2048))},
		{"After 1:64", reader.After(at(segment.HeaderSize))},
		{"Skip(2)", reader.Skip(2)},
	} {
		t.Run(c.name, func(t *testing.T) { followFailedOpen(t, c.start) })
	}
}

func followFailedOpen(t *testing.T, start reader.Start) {
	dir := t.TempDir()
	seg1 := filepath.Join(dir, segment.FileName(1))
	ffs := &crashtest.FaultFS{}
	var r *reader.Reader
	var dmg []reader.Damage
	var first segment.Header
	ffs.After = func(c crashtest.Call) {
		if r != nil || c.Op != crashtest.OpRename || c.Err != nil || c.Path != seg1+segment.TempExt {
			return
		}
		// Published, Open still running: the follower starts on the
		// empty live log and opens segment 1.
		var err error
		if first, err = segment.ReadHeader(seg1); err != nil {
			t.Fatal(err)
		}
		r, err = reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond, Start: start,
			OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() }) // after followTo's goroutine ended
		if r.Next() {
			t.Fatalf("record at %v in an empty log", r.Record().Position)
		}
		// The next call: the fsync that makes segment 1's name durable.
		ffs.Inject(crashtest.Fault{Op: crashtest.OpSyncDir, N: ffs.Calls(crashtest.OpSyncDir) + 1})
	}
	opts := writer.Options{SegmentSize: segSize, Sync: writer.SyncNone, FS: ffs}
	if w, err := writer.Open(dir, opts); err == nil {
		w.Close()
		t.Fatal("writer.Open succeeded with its directory fsync failing")
	}
	if r == nil {
		t.Fatal("writer.Open did not publish segment 1")
	}
	if _, err := os.Lstat(seg1); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the failed Open left segment 1: %v", err)
	}
	if !mapsFile(t, seg1, true) {
		t.Fatal("the follower does not hold the removed segment 1")
	}

	followed := followTo(t, r)
	opts.FS = nil
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var last segment.Position
	for i := 0; last.Seq < 3; i++ {
		if last, err = w.Append(fmt.Appendf(nil, "record %d %s", i, strings.Repeat("x", 1000))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if now, err := segment.ReadHeader(seg1); err != nil || now.Created == first.Created {
		t.Fatalf("the second Open did not make segment 1 again: %v", err)
	}
	all, replayDmg := readAll(t, dir, reader.Options{Start: start})
	if len(replayDmg) != 0 || all[0].pos.Seq != 1 || all[len(all)-1].pos != last {
		t.Fatalf("replay: %d records, %v to %v; damage %v", len(all), all[0].pos, all[len(all)-1].pos, replayDmg)
	}
	sameRecs(t, followed(last), all)
	if len(dmg) != 0 {
		t.Fatalf("the follower reported %v", dmg)
	}
	if !r.SameLog() {
		t.Fatal("SameLog false for the log the follower read from its start")
	}
	// The file it moved to is the segment 1 the look for a log begun
	// again compares with from now on, as if its first listing had found
	// it: with the segments it read removed by hand (out of order, segment
	// 1 kept), segment 1 is the one it read, not a new log's.
	for seq := uint64(2); seq <= last.Seq; seq++ {
		if err := os.Remove(filepath.Join(dir, segment.FileName(seq))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait after segments 2 to %d were removed: %v", last.Seq, err)
	}
}

// A follower started on an empty live log is in segment 1 and has found
// nothing. With the log emptied in place and begun again, it stopped with
// ErrLogReplaced whatever its start. The new log read with its start is
// what it asked for, whichever log it is: a start at segment 1's start
// (First, At 1:64, Last of any number: the log held no record) reads it
// from its first record; one past that (an At offset in the segment, a
// cursor's After, records to Skip) named no record of the file it held,
// which had none, and holds for the new file as for a reader opened on
// the new log. It reads every record from there, and SameLog stays true,
// as its positions are that log's.
func TestFollowerInAnEmptySegmentOne(t *testing.T) {
	at := func(off int64) segment.Position { return segment.Position{Seq: 1, Offset: off} }
	for _, c := range []struct {
		name  string
		start reader.Start
	}{
		{"First", reader.First()},
		{"At 1:64", reader.At(at(segment.HeaderSize))},
		{"Last(0)", reader.Last(0)},
		{"Last(5)", reader.Last(5)},
		{"At 1:2048", reader.At(at(2048))},
		{"After 1:64", reader.After(at(segment.HeaderSize))},
		{"Skip(2)", reader.Skip(2)},
	} {
		for _, segs := range []uint64{1, 3, 8} {
			t.Run(fmt.Sprintf("%s/new log of %d", c.name, segs), func(t *testing.T) {
				dir := t.TempDir()
				opts := unreadStarts[0].old(t, dir) // Open and Close: segment 1, empty
				opts.Start = c.start
				r := followIdle(t, dir, opts)
				testfs.Empty(t, dir)
				last := writeSegments(t, dir, "new", segs)
				replay := c.start
				if c.start == reader.Last(0) || c.start == reader.Last(5) {
					replay = reader.First() // the old log held no record
				}
				all, _ := readAll(t, dir, reader.Options{Start: replay})
				if len(all) == 0 {
					waitIdle(t, r) // its start is past the new log's records
				} else {
					sameRecs(t, followTo(t, r)(last), all)
				}
				if !r.SameLog() {
					t.Fatal("SameLog false for the log the follower read from its start")
				}
			})
		}
	}
}
