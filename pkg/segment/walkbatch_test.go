package segment

import (
	"reflect"
	"testing"
)

// batchWalk walks as the reader and verify do: WalkBatch into a buffer of
// capacity n, resuming after the last event until a stop event or the
// limit.
func batchWalk(img []byte, from int64, mode WalkMode, valid int64, n int) []Event {
	var all []Event
	buf := make([]Event, 0, n)
	for off := from; ; {
		evs, _ := WalkBatch(img, testSeq, off, mode, valid, buf[:0])
		all = append(all, evs...)
		if len(evs) == 0 {
			return all
		}
		last := evs[len(evs)-1]
		if k := last.Kind; k == EvEnd || k == EvTail || k == EvPending {
			return all
		}
		off = last.Offset + last.Len
	}
}

// sameWalk fails unless WalkBatch, at several buffer sizes, gives exactly
// the events WalkValid gives, and stops where it does.
func sameWalk(t *testing.T, img []byte, from int64, mode WalkMode, valid int64) {
	t.Helper()
	var want []Event
	stop := WalkValid(img, testSeq, from, mode, valid, func(ev Event) bool { want = append(want, ev); return true })
	for _, n := range []int{1, 2, 3, 128} {
		got := batchWalk(img, from, mode, valid, n)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("buffer of %d: WalkBatch gave %d events, WalkValid %d (first difference %s)", n, len(got), len(want), firstDiff(got, want))
		}
	}
	// One call with room for everything stops where WalkValid does.
	evs, off := WalkBatch(img, testSeq, from, mode, valid, make([]Event, 0, len(want)+1))
	if len(evs) != len(want) || off != stop {
		t.Fatalf("WalkBatch stopped at %d after %d events, WalkValid at %d after %d", off, len(evs), stop, len(want))
	}
}

func firstDiff(a, b []Event) string {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return "at event " + a[i].Kind.String() + " vs " + b[i].Kind.String()
		}
	}
	return "in length"
}

func TestWalkBatchMatchesWalkValid(t *testing.T) {
	const size = 1 << 20
	build := func() ([]byte, []int64) { return dataRun(size, 40) }
	full := int64(size)

	img, offs := build()
	sameWalk(t, img, HeaderSize, Quiescent, full) // clean, then the tail
	sameWalk(t, img, HeaderSize, Live, full)      // clean, then pending
	sameWalk(t, img, offs[7], Quiescent, full)    // from a frame
	sameWalk(t, img, offs[7]+8, Quiescent, full)  // from inside one: torn first

	img[offs[3]+30] ^= 1 // a torn frame, then resync
	StoreLength(img, offs[10], -int32(offs[11]-offs[10]))
	for p := offs[20]; p < offs[22]; p++ { // a zero gap
		img[p] = 0
	}
	sameWalk(t, img, HeaderSize, Quiescent, full)
	sameWalk(t, img, HeaderSize, Live, full)
	sameWalk(t, img, HeaderSize, Quiescent, offs[30]+50) // a file cut inside frame 30
	sameWalk(t, img, HeaderSize, Quiescent, offs[30]+3)  // inside its header

	img, offs = build()
	PutEnd(img, testSeq, offs[40], 0)
	sameWalk(t, img, HeaderSize, Quiescent, full) // to END
	if evs := batchWalk(img, HeaderSize, Quiescent, full, 3); evs[len(evs)-1].Kind != EvEnd {
		t.Fatalf("the walk ends with %v, not END", evs[len(evs)-1].Kind)
	}

	if evs, off := WalkBatch(img, testSeq, offs[5], Quiescent, full, make([]Event, 2)); len(evs) != 2 || off != offs[5] {
		t.Fatalf("a full buffer: %d events, stopped at %d", len(evs), off)
	}
}

// dataRun builds a segment of the given size holding n DATA frames, the
// i-th with a payload of 100+i bytes, and returns it with the offsets of
// the frames and of the end of the last.
func dataRun(size int64, n int) ([]byte, []int64) {
	img := NewImage(testSeq, size, 0)
	var offs []int64
	off := int64(HeaderSize)
	for i := 0; i < n; i++ {
		offs = append(offs, off)
		off = PutFrame(img, testSeq, off, TypeData, int64(i), make([]byte, 100+i))
	}
	return img, append(offs, off)
}
