package reader_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

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
	move := func(seqs ...uint64) {
		for _, s := range seqs {
			n := segment.FileName(s)
			if err := os.Rename(filepath.Join(full, n), filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	move(1, 2, 3, 4, 5)
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
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
