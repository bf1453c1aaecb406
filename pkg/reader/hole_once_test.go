package reader_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestHoleReportedOnceWhenNextGone: a follower reports the hole of a
// missing segment 2 (DamageMissing, segment 1 being there) as it comes to
// segment 3, whether it read segment 1 or started at a position in
// segment 2. If segment 3's file is gone when it opens it, with nothing
// listed from 3 on (a file a writer made ahead of need, removed unused as
// it closed), the follower waits for a writer to make it again, and then
// reads it: the hole was reported already, and is not reported again. It
// was: the reader forgot it had passed the hole along with segment 3, and
// arriving at segment 3 again reported it a second time.
func TestHoleReportedOnceWhenNextGone(t *testing.T) {
	t.Run("after segment 1", func(t *testing.T) { holeReportedOnce(t, reader.First()) })
	t.Run("from a position in segment 2", func(t *testing.T) {
		holeReportedOnce(t, reader.At(segment.Position{Seq: 2, Offset: segment.HeaderSize}))
	})
}

func holeReportedOnce(t *testing.T, start reader.Start) {
	dir, aside := t.TempDir(), t.TempDir()
	// Segment 1 ends in END without a footer: not read to its END as a
	// sealed one is, so segment 3 is not opened ahead (the reader's
	// prefetch would hold it) and its removal is seen when the reader
	// comes to it.
	one := newSeg(1)
	first := one.add(baseTS, []byte("in segment 1"))
	segment.PutEnd(one.img, one.seq, one.off, baseTS)
	one.write(t, dir)
	three := newSeg(3)
	want := three.add(baseTS+1, []byte("in segment 3"))
	three.seal(t, [segment.DigestSize]byte{})
	three.write(t, dir)
	p3, moved := filepath.Join(dir, segment.FileName(3)), filepath.Join(aside, segment.FileName(3))

	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{Follow: true, Start: start,
		OnDamage: func(d reader.Damage) {
			dmg = append(dmg, d)
			if len(dmg) == 1 {
				// Between the listing and the open of segment 3.
				if err := os.Rename(p3, moved); err != nil {
					t.Error(err)
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if start == reader.First() && (!r.Next() || r.Record().Position != first.pos) {
		t.Fatalf("segment 1's record not read (%v)", r.Err())
	}
	if r.Next() {
		t.Fatalf("record %v read while segment 3 is gone", r.Record().Position)
	}
	if r.Err() != nil || len(dmg) != 1 || dmg[0].Kind != reader.DamageMissing || dmg[0].Seq != 2 || dmg[0].Len != 1 {
		t.Fatalf("Err %v, damage %v; want one report of segment 2 missing", r.Err(), dmg)
	}
	if err := os.Rename(moved, p3); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard) // a hang, not a measurement
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v, damage %v", err, dmg)
	}
	if !r.Next() || r.Record().Position != want.pos {
		t.Fatalf("no record of segment 3 (%v)", r.Err())
	}
	if len(dmg) != 1 {
		t.Fatalf("%d damage reports, want the hole's once: %v", len(dmg), dmg)
	}
}
