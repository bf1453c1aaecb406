package reader_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// removeSegs removes the segment files seqs, as a retention job deleting
// old segments does.
func removeSegs(t *testing.T, dir string, seqs ...uint64) {
	t.Helper()
	for _, s := range seqs {
		if err := os.Remove(filepath.Join(dir, segment.FileName(s))); err != nil {
			t.Fatal(err)
		}
	}
}

// moveSegs moves the segment files seqs from directory from to dir, as a
// writer making them in dir would.
func moveSegs(t *testing.T, from, dir string, seqs ...uint64) {
	t.Helper()
	for _, s := range seqs {
		n := segment.FileName(s)
		if err := os.Rename(filepath.Join(from, n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// waitMore waits for the follower r to have a record; got of want were
// read. The bound is only for a broken reader: every record is there.
func waitMore(t *testing.T, r *reader.Reader, got, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("follow: %v after %d of %d records", err, got, want)
	}
}

// archiveSeg replaces segment seq by its archive, as compress-finished does.
func archiveSeg(t *testing.T, dir string, seq uint64) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, segment.FileName(seq)))
	if err != nil {
		t.Fatal(err)
	}
	archiveSegment(t, dir, seq, data)
}

// without returns the records of all that are not in the segments seqs.
func without(all []rec, seqs ...uint64) []rec {
	var out []rec
next:
	for _, r := range all {
		for _, s := range seqs {
			if r.pos.Seq == s {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// wantRemoved fails unless dmg is one DamageRemoved report for segments
// first to last, naming the file of first as listed.
func wantRemoved(t *testing.T, dir string, dmg []reader.Damage, first, last uint64) {
	t.Helper()
	ok := len(dmg) == 1
	if ok {
		d := dmg[0]
		ok = d.Kind == reader.DamageRemoved && d.Seq == first && d.Len == int64(last-first+1) &&
			d.Path == filepath.Join(dir, segment.FileName(first)) && !d.Kind.CrashLeftover()
	}
	if !ok {
		t.Fatalf("damage = %v, want segments %d to %d reported removed", dmg, first, last)
	}
}

// wantRemovedTo is wantRemoved for a run that ends at last and starts at
// least at low, which it returns: retention removing the oldest segments
// up to last while the reader reads low-1 also removes those it opened
// ahead or not (a prefetch, bulk workers), and which it had is a matter
// of scheduling: their records are read, or they are reported removed.
func wantRemovedTo(t *testing.T, dir string, dmg []reader.Damage, low, last uint64) uint64 {
	t.Helper()
	if len(dmg) != 1 || dmg[0].Seq < low || dmg[0].Seq > last {
		t.Fatalf("damage = %v, want segments %d (or a later one) to %d reported removed", dmg, low, last)
	}
	wantRemoved(t, dir, dmg, dmg[0].Seq, last)
	return dmg[0].Seq
}

// seqs returns the numbers from to to.
func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestSegmentRemovedBeforeRead: segments a retention job deletes (the
// oldest, 1 to 4) after the reader listed the directory and before it
// opened them are reported as removed (DamageRemoved, one report for the
// run of them) and passed, and the reader goes on with the next segment,
// replaying or following; one replaced by its archive meanwhile is read
// from the archive. Removing the files while the reader holds segment 1
// orders it without a test hook: the reader opens segment 2 ahead of need
// (a prefetch, which may or may not have opened it yet) but nothing after
// it before it moves to segment 2. Both failed: "cannot open segment"
// (DamageSegment, which made tail exit 2) and a DamageMissing for segment
// 4.
func TestSegmentRemovedBeforeRead(t *testing.T) {
	for _, follow := range []bool{false, true} {
		dir := t.TempDir()
		all := writeLog(t, dir, 9000, true)
		if all[len(all)-1].pos.Seq < 7 {
			t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
		}
		var dmg []reader.Damage
		r, err := reader.Open(dir, reader.Options{Follow: follow, OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
		if err != nil {
			t.Fatal(err)
		}
		var got []rec
		take := func() {
			for r.Next() {
				x := r.Record()
				got = append(got, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: append([]byte(nil), x.Payload...)})
				if len(got) == 1 {
					return
				}
			}
		}
		take()
		if len(got) != 1 {
			t.Fatalf("no first record: %v", r.Err())
		}
		removeSegs(t, dir, 1, 2, 3, 4) // 1 is being read
		archiveSeg(t, dir, 5)
		end := all[len(all)-1].pos
		for {
			take()
			if got[len(got)-1].pos == end || r.Err() != nil || !follow {
				break
			}
			waitMore(t, r, len(got), len(all))
		}
		if err := r.Err(); err != nil {
			t.Fatalf("follow %v: reader error %v", follow, err)
		}
		first := wantRemovedTo(t, dir, dmg, 2, 4)
		sameRecs(t, got, without(all, seqs(first, 4)...))
		if r.Damaged() != 1 {
			t.Fatalf("Damaged() = %d", r.Damaged())
		}
		r.Close()
	}
}

// TestRemovedStrict: under Strict a removed segment stops the reader, as
// anything it passes over does: its records were not read. Retention
// removes 1 to 3 while 1 is read; 2 may have been opened ahead.
func TestRemovedStrict(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 4000, true)
	r, err := reader.Open(dir, reader.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ; r.Next(); n++ {
		if n == 0 {
			removeSegs(t, dir, 1, 2, 3)
		}
	}
	var d *reader.Damage
	if !errors.As(r.Err(), &d) || d.Kind != reader.DamageRemoved || d.Seq < 2 || d.Seq+uint64(d.Len) != 4 ||
		n != len(all)-len(without(all, seqs(1, d.Seq-1)...)) {
		t.Fatalf("%d records, then %v", n, r.Err())
	}
}

// TestLastStartSegmentRemoved: -n N starts in a segment after passing its
// first records; when that segment is removed before it is read, the
// records to pass were its own: none of the next segment's is passed
// instead.
func TestLastStartSegmentRemoved(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 6000, true)
	after3 := len(without(all, 1, 2, 3))
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{Start: reader.Last(uint64(after3 + 10)), OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	removeSegs(t, dir, 1, 2, 3) // 3 located by its footer at Open; not opened yet
	var got []rec
	for r.Next() {
		x := r.Record()
		got = append(got, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: append([]byte(nil), x.Payload...)})
	}
	sameRecs(t, got, all[len(all)-after3:])
	wantRemoved(t, dir, dmg, 3, 3) // 1 and 2 were passed by their footers
}

// TestSegmentRemovedBeforeBulkRead: the same with Options.Bulk, which
// opens the sealed segments ahead on its own goroutines and hands a
// segment it could not open back to the reader. With one worker the bulk
// planner opens at most about 2*2+2 segments ahead of the range being
// written (its queues hold two ranges per worker, one 64 KiB segment is
// one range), so segments 12 to 14 are not opened yet while the first
// Write runs, whatever the scheduling. Retention removes 1 to 13 during
// that Write: the workers may have opened some of 2 to 11 by then.
func TestSegmentRemovedBeforeBulkRead(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 20000, true)
	if all[len(all)-1].pos.Seq < 16 {
		t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
	}
	var got []byte
	var dmg []reader.Damage
	writes := 0
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) },
		Bulk: &reader.Bulk{Workers: 1, Append: lineOf, Write: func(p []byte, _ reader.Position) error {
			if writes++; writes == 1 {
				removeSegs(t, dir, seqs(1, 13)...) // 1 is being written
				archiveSeg(t, dir, 14)
			}
			got = append(got, p...)
			return nil
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		x := r.Record()
		got = append(got, recLine(&x)...)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, x := range without(all, seqs(wantRemovedTo(t, dir, dmg, 2, 13), 13)...) {
		want = lineOf(want, x.pos, x.ts, x.payload)
	}
	if string(got) != string(want) {
		t.Fatalf("output differs:\n%s", firstDiff(string(got), string(want)))
	}
}
