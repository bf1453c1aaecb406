package reader_test

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// sealedThenFilling writes segment 1, sealed, into dir and returns
// segment 2 holding n records, not yet written, the records of both, and
// segment 1's digest.
func sealedThenFilling(t *testing.T, dir string, n int) (*segBuilder, []rec, [segment.DigestSize]byte) {
	t.Helper()
	var want []rec
	b := newSeg(1)
	for i := range n {
		want = append(want, b.add(baseTS+int64(i), payload(i)))
	}
	prev := b.seal(t, [segment.DigestSize]byte{})
	b.write(t, dir)
	b = newSeg(2)
	for i := range n {
		want = append(want, b.add(baseTS+int64(n+i), payload(n+i)))
	}
	return b, want, prev
}

// storeAllButMagic stores f into b's footer as a seal killed before its
// last store leaves it (segment.StoreFooter stores the magic last).
func storeAllButMagic(b *segBuilder, f segment.Footer) {
	var ft [segment.FooterSize]byte
	f.Encode(ft[:])
	m := len(segment.FooterMagic)
	copy(b.img[len(b.img)-segment.FooterSize+m:], ft[m:])
}

// TestSealCutByCrash reads a log whose writer (under `none`, which
// stores footers through the mapping, magic last) was killed while it
// stored a footer: every byte but the magic. That is a seal that did not
// finish, which recovery completes: every record is read, and nothing is
// reported (it was a damaged footer, DamageSegment).
func TestSealCutByCrash(t *testing.T) {
	dir := t.TempDir()
	b, want, prev := sealedThenFilling(t, dir, 10)
	segment.PutEnd(b.img, b.seq, b.off, baseTS)
	f, err := segment.SealFooter(b.img, prev, 0, baseTS)
	if err != nil {
		t.Fatal(err)
	}
	storeAllButMagic(b, f)
	b.write(t, dir)
	newSeg(3).write(t, dir) // the active segment, empty

	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 0 {
		t.Fatalf("damage reported for an interrupted seal: %+v", dmg)
	}
}

// TestSealCutWithoutEnd: part of a footer stored (no magic) over a
// segment whose frames stop in zeros before any END frame. No crash
// leaves that (the footer is stored once END is committed): END and
// maybe frames were lost (a power loss under SyncNone, or damage), as
// verify's missing-end says. It was read as a dead writer's leftover
// (a warning), or, as the newest file, as the end of the log (nothing).
func TestSealCutWithoutEnd(t *testing.T) {
	for _, after := range []string{"nothing", "an empty segment", "a sealed segment"} {
		t.Run(after, func(t *testing.T) {
			dir := t.TempDir()
			b, want, _ := sealedThenFilling(t, dir, 5)
			cutAt := b.off
			storeAllButMagic(b, segment.Footer{Seq: 2, Records: 6, EndOffset: cutAt + 64})
			b.write(t, dir)
			switch after {
			case "an empty segment":
				newSeg(3).write(t, dir)
			case "a sealed segment":
				n := newSeg(3)
				want = append(want, n.add(baseTS+10, payload(10)))
				n.seal(t, [segment.DigestSize]byte{})
				n.write(t, dir)
			}

			got, dmg := readAll(t, dir, reader.Options{})
			sameRecs(t, got, want)
			if len(dmg) != 1 || dmg[0].Kind != reader.DamageTorn || dmg[0].Seq != 2 || dmg[0].Offset != cutAt {
				t.Fatalf("damage %+v, want one torn at 2:%d", dmg, cutAt)
			}
		})
	}
}
