package reader_test

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestRemovedFromTheMiddleIsDamage: a segment listed, then removed from
// the middle of the log (3, with 1 and 2 still there, as are 4 and 5), is
// not what retention does (it removes the oldest first): it is a hole
// between two segments that are there, DamageMissing (tail: exit 1), as
// verify of the same directory reports a gap. It was DamageRemoved (a tail
// warning, exit 0), because passRemoved did not look at the segment below.
func TestRemovedFromTheMiddleIsDamage(t *testing.T) {
	full, dir := t.TempDir(), t.TempDir()
	all := writeLog(t, full, 12000, true)
	if all[len(all)-1].pos.Seq < 5 {
		t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
	}
	moveSegs(t, full, dir, 1, 2, 3, 4, 5)
	var dmg []reader.Damage
	r := openAtFirst(t, dir, &dmg)
	defer r.Close()
	got := 1
	removeSegs(t, dir, 3) // 1 and 2 stay, as do 4 and 5
	for ; r.Next(); got++ {
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if want := len(without(all, 3)) - len(without(all, 1, 2, 3, 4, 5)); got != want {
		t.Errorf("%d records, want %d: all of 1, 2, 4 and 5", got, want)
	}
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageMissing || dmg[0].Seq != 3 || dmg[0].Len != 1 || dmg[0].Path != dir {
		for _, d := range dmg {
			t.Logf("%v: %v", d.Kind, &d)
		}
		t.Fatalf("segment 3 missing between 2 and 4, both still there: %d reports, want one DamageMissing", len(dmg))
	}
	if msg := dmg[0].Error(); msg != dir+": segment 3 is missing" {
		t.Errorf("report %q, not worded as a hole between present segments", msg)
	}
}

// Segments 2 to 4 removed while the reader reads 2, with 1 (older,
// already read) still there. Retention removes the oldest first, so this
// is not retention: a hole between 1 and 5, both still there, is damage,
// as verify reports the same case (TestRemovedInTheMiddleIsAGap). The
// reader looked only at the segment passed last (2, gone) and reported
// DamageRemoved, so tail exited 0.
func TestRemovedWhileAnOlderStaysIsDamage(t *testing.T) {
	full, dir := t.TempDir(), t.TempDir()
	all := writeLog(t, full, 16000, true)
	if all[len(all)-1].pos.Seq < 6 {
		t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
	}
	moveSegs(t, full, dir, 1, 2, 3, 4, 5, 6)
	var dmg []reader.Damage
	r := openAtFirst(t, dir, &dmg)
	defer r.Close()
	for r.Next() && r.Record().Position.Seq < 2 {
	}
	if r.Record().Position.Seq != 2 {
		t.Fatalf("not in segment 2: %v", r.Err())
	}
	removeSegs(t, dir, 2, 3, 4) // 1 stays
	for r.Next() {
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dmg {
		t.Logf("%v: %v", d.Kind, &d)
	}
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageMissing {
		t.Fatalf("segment 1 still there, 2..4 removed: %d reports, want one DamageMissing (verify: gap)", len(dmg))
	}
}

// TestStartInAHoleIsDamage: a start position (tail --from, a cursor) in a
// segment missing between two that are there (3, with 1, 2, 4 and the
// rest present) is a hole in the log, DamageMissing, as verify reports a gap
// and as a replay from 2 reports it. The reader began at 4 silently
// (tail --from 3:64: exit 0, segment 3's records gone unmentioned),
// since no segment had been passed for arrive to see the hole from. A
// start in a segment retention removed (1 to 3 gone, none older) is no
// damage: reading begins at the first segment there, as before.
func TestStartInAHoleIsDamage(t *testing.T) {
	hole, kept := t.TempDir(), t.TempDir()
	all := writeLog(t, hole, 12000, true)
	if all[len(all)-1].pos.Seq < 5 {
		t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
	}
	writeLog(t, kept, 12000, true)
	removeSegs(t, hole, 3)
	removeSegs(t, kept, 1, 2, 3)
	at := segment.Position{Seq: 3, Offset: segment.HeaderSize}
	want := len(without(all, 1, 2, 3))
	for _, start := range []reader.Start{reader.At(at), reader.After(at)} {
		got, dmg := readAll(t, hole, reader.Options{Start: start})
		if len(got) != want {
			t.Errorf("hole: %d records, want %d: all from 4 on", len(got), want)
		}
		if len(dmg) != 1 || dmg[0].Kind != reader.DamageMissing || dmg[0].Seq != 3 || dmg[0].Len != 1 || dmg[0].Path != hole {
			t.Errorf("start in segment 3, missing between 2 and 4: damage %v, want one DamageMissing of 3", dmg)
		}
		got, dmg = readAll(t, kept, reader.Options{Start: start})
		if len(got) != want || len(dmg) != 0 {
			t.Errorf("start in segment 3, removed with all older: %d records, damage %v; want %d, none", len(got), dmg, want)
		}
	}
}
