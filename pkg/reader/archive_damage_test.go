package reader_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestDamagedArchiveOffset: an archive that does not decompress is
// reported with the segment offset from which its content is lost (it
// was reported at 0, and its error named no offset), and its error names
// the damaged block's offset in the archive; the other segments' records
// all come back.
func TestDamagedArchiveOffset(t *testing.T) {
	dir, recs, p, z := archivedLog(t)
	// Flips from the middle of the frame on until one breaks its
	// structure: most decode, to other bytes, caught only by the content
	// checksum, which places nothing.
	good := z
	var ad *segment.ArchiveDamage
	var aerr error
	for at := len(good) / 2; ; at += 101 {
		if at >= len(good)-segment.SummaryFrameSize {
			t.Fatal("no flip placed")
		}
		z = append([]byte(nil), good...)
		z[at] ^= 0x5a
		if err := os.WriteFile(p, z, 0o640); err != nil {
			t.Fatal(err)
		}
		_, aerr = segment.ReadArchive(p)
		if !errors.As(aerr, &ad) {
			t.Fatalf("byte %d flipped: %v, not an *ArchiveDamage", at, aerr)
		}
		if ad.Block > 0 {
			break
		}
	}
	if ad.Lost <= 0 {
		t.Fatalf("%v: damage past the first block lost from %d", aerr, ad.Lost)
	}
	got, dmg := readAll(t, dir, reader.Options{})
	var want []rec
	for _, r := range recs {
		if r.pos.Seq != 1 {
			want = append(want, r)
		}
	}
	sameRecs(t, got, want)
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageSegment || dmg[0].Seq != 1 || dmg[0].Offset != ad.Lost ||
		!errors.Is(&dmg[0], segment.ErrCorrupt) || !strings.Contains(dmg[0].Error(), fmt.Sprintf("archive offset %d", ad.Block)) {
		t.Fatalf("damage %+v, want segment 1 lost from %d (%v)", dmg, ad.Lost, aerr)
	}
}

// TestChecksumDamagedArchiveSalvaged: an archive that decodes, but to
// bytes its content checksum does not match (most single flipped bytes),
// is read frame by frame: every record whose CRC passes comes back (the
// whole segment was skipped before), none that differs from what was
// written, and the damage is reported for the segment and for each frame.
func TestChecksumDamagedArchiveSalvaged(t *testing.T) {
	dir, recs, p, good := archivedLog(t)
	var ad *segment.ArchiveDamage
	for at := len(good) / 2; ; at += 101 {
		if at >= len(good)-segment.SummaryFrameSize {
			t.Fatal("no flip that only the checksum catches")
		}
		z := append([]byte(nil), good...)
		z[at] ^= 0x5a
		if err := os.WriteFile(p, z, 0o640); err != nil {
			t.Fatal(err)
		}
		if _, err := segment.ReadArchive(p); errors.As(err, &ad) && ad.Block < 0 {
			break
		}
	}
	got, dmg := readAll(t, dir, reader.Options{})
	byPos := map[segment.Position]rec{}
	inSeg1 := 0
	for _, r := range recs {
		byPos[r.pos] = r
		if r.pos.Seq == 1 {
			inSeg1++
		}
	}
	salvaged, others := 0, 0
	for _, g := range got {
		w, ok := byPos[g.pos]
		if !ok || string(w.payload) != string(g.payload) || w.ts != g.ts {
			t.Fatalf("record at %v is not the one written there", g.pos)
		}
		if g.pos.Seq == 1 {
			salvaged++
		} else {
			others++
		}
	}
	if others != len(recs)-inSeg1 || salvaged == 0 || salvaged == inSeg1 {
		t.Fatalf("%d of %d records of other segments, %d of %d of the damaged one", others, len(recs)-inSeg1, salvaged, inSeg1)
	}
	if len(dmg) < 2 || dmg[0].Kind != reader.DamageSegment || dmg[0].Seq != 1 || !strings.Contains(dmg[0].Error(), "one by one") {
		t.Fatalf("damage %+v: want the segment's, then its frames'", dmg)
	}
	t.Logf("%d of %d records of the damaged segment read; %d damage reports", salvaged, inSeg1, len(dmg))
}

// archivedLog writes a log of 1 MiB segments whose first is archived; it
// returns the records, the archive's path and its bytes.
func archivedLog(t *testing.T) (dir string, recs []rec, path string, archived []byte) {
	t.Helper()
	dir = t.TempDir()
	recs = writeLogSize(t, dir, 1<<20, 30000, true, payload)
	data, err := os.ReadFile(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	archiveSegment(t, dir, 1, data)
	path = filepath.Join(dir, segment.ArchiveName(1))
	if archived, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return dir, recs, path, archived
}
