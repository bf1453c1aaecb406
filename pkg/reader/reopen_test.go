package reader

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// 024e85a opens a prefetched segment whose footer read faults (the file
// was truncated after the prefetch mapped it) again, and reads it as it
// is now, but only when nothing had been reported for it yet: a copy of
// another segment under its name (cp 1.seg 2.seg) has its header
// mismatch reported first. Such a file was reported twice, the mismatch
// and a fault, and passed whole: the 100 records the cut left (in its
// first 4096 bytes, with END) were lost, though a reader that came to the
// file after the cut reads them, with one report of the file as shorter
// than its header says. In order and through the bulk path (which hands
// such a file back to be read in order).
func TestPrefetchedCopyTruncated(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	copy1 := func(dir string) { copySegment(t, dir, 1, 2) }
	n, dmg, p := readPrefetchTruncated(t, Options{}, copy1)
	if n != 300 || len(dmg) != 1 {
		t.Fatalf("in order: %d records, damage %v; want all three segments, one report", n, dmg)
	}
	wantShort(t, dmg[0], p, 4096)
	wantBulkPrefetchTruncated(t, copy1)
}

// A segment the reader opens itself (no prefetch: the read starts in it)
// had the same window, between segment.OpenImage and the footer read,
// and a report in it: the header mismatch of a copy. Cut to 4096 bytes
// as that report is delivered (OnDamage), the file's footer read
// faulted, and it was reported as changed and passed, its 100 records
// lost. The footer is read before anything of the segment is reported:
// the cut then comes after it, and the walk reads every record the cut
// left.
func TestOpenedCopyCutAsReported(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	sealedLog(t, dir, 3, 100)
	copySegment(t, dir, 1, 2)
	p := filepath.Join(dir, segment.FileName(2))
	var (
		r   *Reader
		dmg []Damage
	)
	r, err := Open(dir, Options{Start: At(Position{Seq: 2, Offset: segment.HeaderSize}), OnDamage: func(d Damage) {
		dmg = append(dmg, d)
		if len(dmg) == 1 {
			if r.pre != nil {
				t.Errorf("segment %d prefetched: want segment 2 opened by openSeg", r.pre.seq)
			}
			if err := os.Truncate(p, 4096); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := map[uint64]int{}
	for r.Next() {
		n[r.Record().Position.Seq]++
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	want := fmt.Sprintf("%s: offset 16: header sequence 1 does not match the file name", p)
	if n[2] != 100 || n[3] != 100 || len(dmg) != 1 || dmg[0].Seq != 2 || dmg[0].Error() != want {
		t.Fatalf("records per segment %v, damage %v; want segments 2 and 3 whole, one report %q", n, dmg, want)
	}
}
