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

// TestSealedSegmentGapAndClaim: zeros, or a commit word turned into a
// claim, inside a sealed segment are damage (DamageTorn, not a dead
// writer's leftovers: tail exited 0), and a forged claim's extent is not
// trusted: every record after it whose CRC matches comes back. Only the
// zeros say so in Damage.Zeros.
func TestSealedSegmentGapAndClaim(t *testing.T) {
	for _, c := range []struct {
		name    string
		zeros   bool
		corrupt func(img []byte, s2 []rec)
	}{
		{"zeroed record", true, func(img []byte, s2 []rec) { clear(img[s2[3].pos.Offset:s2[4].pos.Offset]) }},
		{"forged claim to the record limit", false, func(img []byte, s2 []rec) {
			off := s2[3].pos.Offset
			segment.StoreLength(img, off, -int32(segment.RecordLimit(int64(len(img)))-off))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			recs := writeLog(t, dir, 3000, true)
			_, s2 := corruptSeg2(t, dir, recs, c.corrupt)
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
			if dmg[0].Zeros() != c.zeros {
				t.Errorf("Zeros() = %v, want %v", dmg[0].Zeros(), c.zeros)
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
	_, s2 := corruptSeg2(t, dir, recs, func(img []byte, s2 []rec) {
		img[s2[3].pos.Offset+segment.FrameHeaderSize] ^= 0xff // the CRC no longer matches
	})
	torn := s2[3].pos
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

// TestUnsealedBeforeSealed: a segment with neither END frame nor footer
// before a sealed one lost its end (segments are sealed in order, and
// recovery seals only those after the newest sealed one): torn, as verify's
// missing-end, not a dead writer's unfinished segment, also when nothing
// is left after its header.
func TestUnsealedBeforeSealed(t *testing.T) {
	for _, keep := range []int{3, 0} {
		t.Run(fmt.Sprint(keep, " records kept"), func(t *testing.T) {
			dir := t.TempDir()
			recs := writeLog(t, dir, 3000, true)
			var from int64
			p, _ := corruptSeg2(t, dir, recs, func(img []byte, s2 []rec) {
				from = s2[keep].pos.Offset
				clear(img[from:]) // records, END and footer
			})
			var want []rec
			for _, r := range recs {
				if r.pos.Seq != 2 || r.pos.Offset < from {
					want = append(want, r)
				}
			}
			got, dmg := readAll(t, dir, reader.Options{})
			sameRecs(t, got, want)
			if len(dmg) != 1 || dmg[0].Kind != reader.DamageTorn || dmg[0].Seq != 2 || dmg[0].Offset != from {
				t.Fatalf("damage %+v, want one torn at 2:%d", dmg, from)
			}
			if !errors.Is(&dmg[0], segment.ErrCorrupt) || !strings.Contains(dmg[0].Error(), p) {
				t.Fatalf("damage text %q does not name the file", dmg[0].Error())
			}
		})
	}
}

// corruptSeg2 rewrites segment 2 of the log recs were written to (5
// records or more, and a third segment after it) with corrupt applied to
// its file, and returns the file's path and segment 2's records.
func corruptSeg2(t *testing.T, dir string, recs []rec, corrupt func(img []byte, s2 []rec)) (string, []rec) {
	t.Helper()
	s2 := inSeg(recs, 2)
	if len(s2) < 5 || inSeg(recs, 3) == nil {
		t.Fatal("fixture: want a third segment after a second of 5+ records")
	}
	p := filepath.Join(dir, segment.FileName(2))
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	corrupt(img, s2)
	if err := os.WriteFile(p, img, 0o640); err != nil {
		t.Fatal(err)
	}
	return p, s2
}
