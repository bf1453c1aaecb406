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

// EndClaim is the one answer recovery, verify and the reader take on an
// END claim: only an extent that reaches the record limit is one, and a
// byte behind its header, wherever it is, is named.
func TestEndClaimGarbage(t *testing.T) {
	img := NewImage(testSeq, testSize, 0)
	off := PutFrame(img, testSeq, HeaderSize, TypeData, 1, []byte("x"))
	limit := RecordLimit(testSize)
	if claim, _ := EndClaim(img, off, limit-off-8); claim {
		t.Fatal("an extent short of the record limit taken for the END claim")
	}
	if claim, garbage := EndClaim(img, off, limit-off); !claim || garbage != limit {
		t.Fatalf("clean END claim: %v, garbage at %d; want a claim, none (%d)", claim, garbage, limit)
	}
	img[off+FrameHeaderSize-1] = 1 // inside the claim's header: not behind it
	for _, at := range []int64{off + FrameHeaderSize, limit - 1} {
		img[at] = 'x'
		if claim, garbage := EndClaim(img, off, limit-off); !claim || garbage != min(at, off+FrameHeaderSize) {
			t.Fatalf("byte at %d: %v, garbage at %d", at, claim, garbage)
		}
	}
}
