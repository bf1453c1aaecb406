package reader_test

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
)

// Review: README (tail) says "a segment that is missing between two others
// that are both still there is damage (exit 1)", FORMAT.md section 1 "only a
// number missing between two segments that are both there is a gap", and
// arrive() judges a hole missing "only while the segment below it is still
// there". passRemoved does not look below: segment 3 removed from the
// middle after the listing, with 1, 2 (read) and 4, 5 still there, is
// reported as DamageRemoved (a tail warning, exit 0), while verify of the
// same directory reports a gap (exit 1).
func TestReviewRemovedFromTheMiddleIsDamage(t *testing.T) {
	full, dir := t.TempDir(), t.TempDir()
	all := writeLog(t, full, 12000, true)
	if all[len(all)-1].pos.Seq < 5 {
		t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
	}
	moveSegs(t, full, dir, 1, 2, 3, 4, 5)
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	removeSegs(t, dir, 3) // 1 and 2 stay, as do 4 and 5
	for r.Next() {
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageMissing {
		for _, d := range dmg {
			t.Logf("%v: %v", d.Kind, &d)
		}
		t.Fatalf("segment 3 missing between 2 and 4, both still there: %d reports, want one DamageMissing", len(dmg))
	}
}
