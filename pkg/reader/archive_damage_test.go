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

// TestDamagedArchiveOffset: an archive whose block fails to decode is
// reported once, with the segment offset from which its content is lost
// and the damaged block's offset in the archive, and every record whose
// frame ends before that offset is read, in order, with all of the other
// segments' records: nothing after it, and the frame the loss cuts short
// is not reported again. Before, the whole segment was skipped.
func TestDamagedArchiveOffset(t *testing.T) {
	dir, recs, p, z := archivedLog(t)
	ad, aerr := blockDamage(t, p, z)
	got, dmg := readAll(t, dir, reader.Options{})
	want := salvageable(recs, ad.Lost)
	if len(want) == len(recs) || len(want) < 10 {
		t.Fatalf("%d of %d records before the loss at %d; the test needs some on each side", len(want), len(recs), ad.Lost)
	}
	sameRecs(t, got, want)
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageSegment || dmg[0].Seq != 1 || dmg[0].Offset != ad.Lost ||
		!errors.Is(&dmg[0], segment.ErrCorrupt) || !strings.Contains(dmg[0].Error(), fmt.Sprintf("archive offset %d", ad.Block)) ||
		!strings.Contains(dmg[0].Error(), fmt.Sprintf("records before offset %d are read", ad.Lost)) {
		t.Fatalf("damage %+v, want segment 1 lost from %d (%v)", dmg, ad.Lost, aerr)
	}
	// tail reads sealed segments in bulk; the damaged one is handed back
	// and read as above.
	next, _ := readStream(t, dir, reader.Options{}, false, 0, 0)
	if bulk, _ := readStream(t, dir, reader.Options{}, true, 2, 4096); bulk != next {
		t.Fatalf("bulk read differs: %s", firstDiff(bulk, next))
	}

	// -n N counts the damaged segment's records as it then reads them,
	// not as its footer (the archive's summary) counts them: the last N of
	// those above come back (all when N reaches into the lost ones, which
	// count towards N as the footer counts them). Before, the segment
	// counted 0 when it was the first needed, and all it salvaged came
	// back.
	others := 0 // records of the intact segments
	for _, r := range recs {
		if r.pos.Seq != 1 {
			others++
		}
	}
	for _, n := range []int{others - 3, others + 5, len(want), len(want) + 20} {
		got, _ := readAll(t, dir, reader.Options{Start: reader.Last(uint64(n))})
		sameRecs(t, got, want[max(0, len(want)-n):])
	}
}

// blockDamage flips bytes of the archive z at p from the middle of its
// frame on until one breaks its structure (most decode, to other bytes,
// caught only by the content checksum, which places nothing), and returns
// the damage OpenImage reports.
func blockDamage(t *testing.T, p string, good []byte) (*segment.ArchiveDamage, error) {
	t.Helper()
	var ad *segment.ArchiveDamage
	for at := len(good) / 2; ; at += 101 {
		if at >= len(good)-segment.SummaryFrameSize {
			t.Fatal("no flip placed")
		}
		z := append([]byte(nil), good...)
		z[at] ^= 0x5a
		if err := os.WriteFile(p, z, 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := segment.ReadArchive(p)
		if !errors.As(err, &ad) {
			t.Fatalf("byte %d flipped: %v, not an *ArchiveDamage", at, err)
		}
		if ad.Block > 0 {
			if ad.Lost <= segment.HeaderSize || ad.Lost >= ad.Size {
				t.Fatalf("%v: damage past the first block lost from %d", err, ad.Lost)
			}
			return ad, err
		}
	}
}

// salvageable is recs less the records of segment 1 whose frames reach
// past lost: what can be read of the log when segment 1's archive decodes
// only up to lost (a frame's CRC covers its header and payload).
func salvageable(recs []rec, lost int64) []rec {
	var want []rec
	for _, r := range recs {
		if r.pos.Seq != 1 || r.pos.Offset+segment.FrameHeaderSize+int64(len(r.payload)) <= lost {
			want = append(want, r)
		}
	}
	return want
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
