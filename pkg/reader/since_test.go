package reader_test

import (
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestSinceRecordCommittedLate: a record's time is taken at its commit,
// so a reservation held while the next segment filled and was sealed
// leaves the older segment with the newer record. Since started after the
// newest sealed segment whose records were all older than the bound, and
// passed over that record (TestSoak, seed 1795741871768712631: "record 0
// is 3:64, want 1:586480"). Every record at or after the bound is read,
// whatever the order of the times; bulk reading (tail's) agrees.
func TestSinceRecordCommittedLate(t *testing.T) {
	dir := t.TempDir()
	s1 := newSeg(1)
	s1.add(baseTS+100, []byte("early"))
	late := s1.add(baseTS+500, []byte("committed late"))
	prev := s1.seal(t, [segment.DigestSize]byte{})
	s1.write(t, dir)
	s2 := newSeg(2)
	s2.add(baseTS+200, []byte("in the next segment"))
	s2.add(baseTS+300, []byte("filled meanwhile"))
	prev = s2.seal(t, prev)
	s2.write(t, dir)
	s3 := newSeg(3)
	last := s3.add(baseTS+600, []byte("after"))
	s3.seal(t, prev)
	s3.write(t, dir)
	opts := reader.Options{Since: time.Unix(0, baseTS+400)}
	got, dmg := readAll(t, dir, opts)
	if len(dmg) != 0 {
		t.Fatalf("damage %v", dmg)
	}
	sameRecs(t, got, []rec{late, last})
	want, _ := readStream(t, dir, opts, false, 0, 0)
	if bulk, _ := readStream(t, dir, opts, true, 2, 4096); bulk != want {
		t.Fatalf("bulk output differs:\n%s", firstDiff(bulk, want))
	}
}
