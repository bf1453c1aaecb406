package reader_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A reader holds at most one decompressed segment (issue 5, README), so
// while it reads an archive it must not open the next archive ahead. Seen
// from outside: an archive removed while the reader is in the one before
// it was never opened, so its records are not read and the hole is
// reported; a reader that had opened it ahead would read it from memory.

// twoArchives writes a log whose segments 1 and 2 are archives and
// returns a function that removes the archive of segment 2.
func twoArchives(t *testing.T) (dir string, remove2 func()) {
	dir = t.TempDir()
	writeLog(t, dir, 6000, true)
	for _, seq := range []uint64{1, 2} {
		data, err := os.ReadFile(filepath.Join(dir, segment.FileName(seq)))
		if err != nil {
			t.Fatal(err)
		}
		archiveSegment(t, dir, seq, data)
	}
	return dir, func() {
		time.Sleep(200 * time.Millisecond) // time to open the next archive ahead, if the reader would
		if err := os.Remove(filepath.Join(dir, segment.ArchiveName(2))); err != nil {
			t.Error(err)
		}
	}
}

// readAfterRemoval reads r to its end, counting what comes from segment 2
// (bulk writes counted by the caller), and fails unless segment 2 was
// reported missing and nothing of it was read.
func readAfterRemoval(t *testing.T, r *reader.Reader, dmg *[]reader.Damage, inSeg2 *int) {
	t.Helper()
	for r.Next() {
		if r.Record().Position.Seq == 2 {
			*inSeg2++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if d := *dmg; *inSeg2 != 0 || len(d) != 1 || d[0].Kind != reader.DamageMissing || d[0].Seq != 2 {
		t.Fatalf("segment 2 read after its archive was removed (%d records or writes; damage %v): it was decompressed while segment 1's archive was held", *inSeg2, d)
	}
}

func TestArchiveNotOpenedWhileAnotherIsHeld(t *testing.T) {
	dir, remove2 := twoArchives(t)
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() || r.Record().Position.Seq != 1 {
		t.Fatalf("first record: %v", r.Err())
	}
	remove2()
	inSeg2 := 0
	readAfterRemoval(t, r, &dmg, &inSeg2)
}

// The same for a bulk read (tail -n +1): the planner must not decompress
// the next archive while the consumer still holds the one before it.
func TestBulkArchiveNotOpenedWhileAnotherIsHeld(t *testing.T) {
	dir, remove2 := twoArchives(t)
	var dmg []reader.Damage
	writes, inSeg2 := 0, 0
	write := func(p []byte, last reader.Position) error {
		if writes++; writes == 1 {
			remove2()
		}
		if last.Seq == 2 {
			inSeg2++
		}
		return nil
	}
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) },
		Bulk: &reader.Bulk{Append: lineOf, Write: write}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	readAfterRemoval(t, r, &dmg, &inSeg2)
}
