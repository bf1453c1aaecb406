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
	dir := t.TempDir()
	recs := writeLogSize(t, dir, 1<<20, 30000, true, payload)
	data, err := os.ReadFile(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	archiveSegment(t, dir, 1, data)
	p := filepath.Join(dir, segment.ArchiveName(1))
	z, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
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
