package reader_test

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
)

// openAtFirst opens a reader of dir that appends its damage reports to
// dmg, and reads the first record: the reader then holds segment 1 and has
// listed the directory.
func openAtFirst(t *testing.T, dir string, dmg *[]reader.Damage) *reader.Reader {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { *dmg = append(*dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Next() {
		err := r.Err()
		r.Close()
		t.Fatal(err)
	}
	return r
}

// TestRemovedAfterStaleListing (review): a reader lists segments 1-5; the
// writer then makes 6 and 7 (and 8, 9) and a retention job removes the
// oldest, 1 to 7, before the reader reaches 3 (a slow consumer, or a
// follower stopped for a while). The log left, 8 and 9, is intact, and
// every one of 3..7 was removed by retention, yet 6 and 7, which the
// reader's stale listing never held, are reported as DamageMissing
// (tail: exit 1, "damaged place skipped"; the README says a segment is
// damage only if it "was already missing between two others when the
// directory was listed") instead of DamageRemoved.
func TestRemovedAfterStaleListing(t *testing.T) {
	full := t.TempDir()
	all := writeLog(t, full, 12000, true)
	if all[len(all)-1].pos.Seq < 9 {
		t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
	}
	dir := t.TempDir()
	move := func(seqs ...uint64) { moveSegs(t, full, dir, seqs...) }
	move(1, 2, 3, 4, 5)
	var dmg []reader.Damage
	r := openAtFirst(t, dir, &dmg)
	defer r.Close()
	// The writer goes on (6..9 appear), and retention removes 3..7.
	move(6, 7, 8, 9)
	removeSegs(t, dir, 1, 2, 3, 4, 5, 6, 7) // 1 is being read, 2 was opened ahead
	for r.Next() {
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dmg {
		if d.Kind != reader.DamageRemoved {
			t.Errorf("damage %v (%v): segments created after the listing and removed by retention are reported as damage", d.Kind, &d)
		}
	}
}

// TestRemovedAfterTheLastListed: a reader lists segments 1-5 and reads
// them; while it reads 5, the writer makes 6 to 9 and retention removes 1
// to 7. The reader opened every segment it listed, so none of them is
// found missing; its next listing starts at 8, and 6 and 7, which it never
// listed, are a hole that reaches down to a segment removed (5): removal,
// not a gap in the log. They were reported as DamageMissing.
func TestRemovedAfterTheLastListed(t *testing.T) {
	for _, follow := range []bool{false, true} {
		full, dir := t.TempDir(), t.TempDir()
		all := writeLog(t, full, 12000, true)
		if all[len(all)-1].pos.Seq < 10 {
			t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
		}
		move := func(seqs ...uint64) { moveSegs(t, full, dir, seqs...) }
		move(1, 2, 3, 4, 5)
		var want []rec
		for _, x := range without(all, 6, 7) {
			if x.pos.Seq <= 9 {
				want = append(want, x)
			}
		}
		var dmg []reader.Damage
		r, err := reader.Open(dir, reader.Options{Follow: follow, OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
		if err != nil {
			t.Fatal(err)
		}
		var got []rec
		removed := false
		for len(got) < len(want) {
			if !r.Next() {
				if r.Err() != nil || !follow {
					break
				}
				waitMore(t, r, len(got), len(want))
				continue
			}
			x := r.Record()
			got = append(got, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: append([]byte(nil), x.Payload...)})
			if x.Position.Seq == 5 && !removed {
				removed = true
				move(6, 7, 8, 9)
				removeSegs(t, dir, 1, 2, 3, 4, 5, 6, 7)
			}
		}
		if err := r.Err(); err != nil {
			t.Fatalf("follow %v: %v", follow, err)
		}
		sameRecs(t, got, want)
		wantRemoved(t, dir, dmg, 6, 7)
		r.Close()
	}
}
