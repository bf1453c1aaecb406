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
