package reader_test

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
)

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
