package segment

import "testing"

// The writer claims the END frame (negative length to the record limit)
// before writing it; a crash in between must read as reserved — an
// unfinished frame — not as damage.
func TestEndClaimIsReserved(t *testing.T) {
	img := NewImage(testSeq, testSize, 0)
	off := PutFrame(img, testSeq, HeaderSize, TypeData, 1, []byte("x"))
	StoreLength(img, off, -int32(RecordLimit(testSize)-off))
	f := DecodeFrame(img, testSeq, off)
	if f.State != Reserved || f.Extent != RecordLimit(testSize)-off {
		t.Fatalf("END claim decoded as %v (extent %d): %v", f.State, f.Extent, f.Err)
	}
	var kinds []EventKind
	Walk(img, testSeq, HeaderSize, Quiescent, func(ev Event) bool { kinds = append(kinds, ev.Kind); return true })
	if len(kinds) != 2 || kinds[0] != EvFrame || kinds[1] != EvReserved {
		t.Fatalf("walk %v", kinds)
	}
	// A claim past DataLimit that does not end at the record limit is
	// still damage.
	StoreLength(img, off, -int32(RecordLimit(testSize)-off-8))
	if f := DecodeFrame(img, testSeq, off); f.State != Torn {
		t.Fatalf("short END-like claim decoded as %v", f.State)
	}
}
