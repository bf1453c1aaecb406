package reader

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestBulkChangedRecordThenFaultReportedAsChanged: a file the bulk worker
// cannot open again is checked in its mapping by segment.ScanData, which
// reads on to the range's end after a record whose copy failed its CRC.
// Where that record ends at a page boundary and the file was cut inside
// its page, the next frame's header is past the end of the file: the walk
// faults after the change, and the fault hid it. The range was read again
// in order from its start, which found the record torn and faulted at the
// next page, reporting the file as changed from the record with no data
// at the page's end, not the record as changed after its check (as the
// in-order path and TestBulkChangedRecordReportedAsChanged say it); and
// had the file been written back from the next page on meanwhile, the
// record torn: damage of the log (tail: exit 1, the cursor stored past
// it). Segment 2: records 0-4 of 1000 bytes, record 5 ending at 8192,
// records 6-9 after it; ScanData checks 3, 4 and 5 before it formats them,
// and formatting 4 cuts the file 500 bytes into record 5's payload.
func TestBulkChangedRecordThenFaultReportedAsChanged(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	ps := int64(os.Getpagesize())
	dir := t.TempDir()
	recs := sealedPair(t, dir, func(seq uint64, i int, off int64) []byte {
		if i == 10 {
			return nil
		}
		n := int64(1000)
		if seq == 2 && i == 5 {
			n = 2*ps - off - segment.FrameHeaderSize
		}
		return bytes.Repeat([]byte{byte('a' + int(seq)*10 + i)}, int(n))
	})
	path := filepath.Join(dir, segment.FileName(2))
	victim := recs[1][5]
	if victim.pos.Offset != segment.HeaderSize+5*1024 || victim.end() != 2*ps || recs[1][6].pos.Offset != 2*ps {
		t.Fatalf("layout: record 5 at %v, ends at %d, record 6 at %v", victim.pos, victim.end(), recs[1][6].pos)
	}
	got, dmg := readUnreopenableCut(t, dir, recs, 0)
	want := append(recs[0][2:len(recs[0]):len(recs[0])], recs[1][:5]...)
	wantRecheck(t, got, want, dmg, path, victim)
	var ce *segment.ChangedError
	if len(dmg) == 0 || !errors.Is(dmg[0].Err, segment.ErrChangedAfterCheck) || !errors.As(dmg[0].Err, &ce) ||
		ce.Off != victim.pos.Offset || dmg[0].Len != victim.end()-victim.pos.Offset {
		t.Fatalf("damage %v; want record 5 (%d bytes at %d) changed after its check first", dmg, victim.end()-victim.pos.Offset, victim.pos.Offset)
	}
	if len(dmg) != 2 || dmg[1].Kind != DamageSegment || dmg[1].Offset != 2*ps || errors.Is(dmg[1].Err, segment.ErrChangedAfterCheck) {
		t.Fatalf("damage after the change %v; want the file changed from record 6, at %d", dmg[1:], 2*ps)
	}
}
