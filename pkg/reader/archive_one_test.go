package reader_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestArchiveNotOpenedWhileAnotherIsHeld: a reader holds at most one
// decompressed segment (issue 5, README), so while it reads an archive it
// must not open the next archive ahead. Seen from outside: an archive
// removed while the reader is in the one before it was never opened, so
// its records are not read and the hole is reported; a reader that had
// prefetched it would read it from memory.
func TestArchiveNotOpenedWhileAnotherIsHeld(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 6000, true)
	for _, seq := range []uint64{1, 2} {
		data, err := os.ReadFile(filepath.Join(dir, segment.FileName(seq)))
		if err != nil {
			t.Fatal(err)
		}
		archiveSegment(t, dir, seq, data)
	}
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() || r.Record().Position != all[0].pos {
		t.Fatalf("first record: %v", r.Err())
	}
	time.Sleep(200 * time.Millisecond) // time for a prefetch, if one were started, to open it
	if err := os.Remove(filepath.Join(dir, segment.ArchiveName(2))); err != nil {
		t.Fatal(err)
	}
	inSeg2 := 0
	for r.Next() {
		if r.Record().Position.Seq == 2 {
			inSeg2++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if inSeg2 != 0 || len(dmg) != 1 || dmg[0].Kind != reader.DamageMissing || dmg[0].Seq != 2 {
		t.Fatalf("%d records of segment 2 read after its archive was removed (damage %v): it was decompressed while segment 1's archive was held", inSeg2, dmg)
	}
}
