package reader_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestSealedSegmentGapAndClaim: zeros, or a commit word turned into a
// claim, inside a sealed segment are damage (DamageTorn, not a dead
// writer's leftovers: tail exited 0), and a forged claim's extent is not
// trusted: every record after it whose CRC matches comes back.
func TestSealedSegmentGapAndClaim(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt func(img []byte, s2 []rec)
	}{
		{"zeroed record", func(img []byte, s2 []rec) { clear(img[s2[3].pos.Offset:s2[4].pos.Offset]) }},
		{"forged claim to the record limit", func(img []byte, s2 []rec) {
			off := s2[3].pos.Offset
			segment.StoreLength(img, off, -int32(segment.RecordLimit(int64(len(img)))-off))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			recs := writeLog(t, dir, 3000, true)
			s2 := inSeg(recs, 2)
			p := filepath.Join(dir, segment.FileName(2))
			img, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			c.corrupt(img, s2)
			if err := os.WriteFile(p, img, 0o640); err != nil {
				t.Fatal(err)
			}
			want := make([]rec, 0, len(recs))
			for _, r := range recs {
				if r.pos != s2[3].pos {
					want = append(want, r)
				}
			}
			// (Bulk reads give the same: TestBulkSameAsNext.)
			got, dmg := readAll(t, dir, reader.Options{})
			sameRecs(t, got, want)
			if len(dmg) != 1 || dmg[0].Kind != reader.DamageTorn || dmg[0].Kind.CrashLeftover() || dmg[0].Offset != s2[3].pos.Offset {
				t.Fatalf("damage %+v, want one torn at %d", dmg, s2[3].pos.Offset)
			}
		})
	}
}

// TestLastCountsDamagedByFooter: Last(n) counts sealed segments by their
// footers, as documented, so a torn record after the start still counts:
// the n-1 records that survive of the last n come back, and the damage is
// reported. The start itself is where it would be without the damage.
func TestLastCountsDamagedByFooter(t *testing.T) {
	dir := t.TempDir()
	recs := writeLog(t, dir, 3000, true)
	s2 := inSeg(recs, 2)
	if len(s2) < 5 || inSeg(recs, 3) == nil {
		t.Fatalf("fixture: want a third segment after a second of 5+ records")
	}
	p := filepath.Join(dir, segment.FileName(2))
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	torn := s2[3].pos
	img[torn.Offset+segment.FrameHeaderSize] ^= 0xff // the CRC no longer matches
	if err := os.WriteFile(p, img, 0o640); err != nil {
		t.Fatal(err)
	}
	n := len(recs) - len(inSeg(recs, 1)) + 2 // from the second-last record of segment 1
	var want []rec
	for _, r := range recs[len(recs)-n:] {
		if r.pos != torn {
			want = append(want, r)
		}
	}
	got, dmg := readAll(t, dir, reader.Options{Start: reader.Last(uint64(n))})
	sameRecs(t, got, want)
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageTorn || dmg[0].Offset != torn.Offset {
		t.Fatalf("damage %+v, want one torn at %d", dmg, torn.Offset)
	}
}
