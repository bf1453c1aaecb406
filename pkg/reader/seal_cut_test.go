package reader_test

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestSealCutByCrash reads a log whose writer (under `none`, which
// stores footers through the mapping, magic last) was killed while it
// stored a footer: every byte but the magic. That is a seal that did not
// finish, which recovery completes: every record is read, and nothing is
// reported (it was a damaged footer, DamageSegment).
func TestSealCutByCrash(t *testing.T) {
	dir := t.TempDir()
	var want []rec
	var prev [segment.DigestSize]byte
	b := newSeg(1)
	for i := range 10 {
		want = append(want, b.add(baseTS+int64(i), payload(i)))
	}
	prev = b.seal(t, prev)
	b.write(t, dir)

	b = newSeg(2)
	for i := range 10 {
		want = append(want, b.add(baseTS+int64(10+i), payload(10+i)))
	}
	segment.PutEnd(b.img, b.seq, b.off, baseTS)
	f, err := segment.SealFooter(b.img, prev, 0, baseTS)
	if err != nil {
		t.Fatal(err)
	}
	var ft [segment.FooterSize]byte
	f.Encode(ft[:])
	m := len(segment.FooterMagic)
	copy(b.img[len(b.img)-segment.FooterSize+m:], ft[m:])
	b.write(t, dir)
	newSeg(3).write(t, dir) // the active segment, empty

	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 0 {
		t.Fatalf("damage reported for an interrupted seal: %+v", dmg)
	}
}
