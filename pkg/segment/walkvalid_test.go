package segment

import "testing"

// WalkValid never looks past valid: bytes there are padding of a truncated
// file. Filling them with garbage proves they are not read.
func TestWalkValidReadsNothingPastValid(t *testing.T) {
	const size = 1 << 20
	build := func() ([]byte, []int64) { return dataRun(size, 20) }
	kinds := func(img []byte, valid int64) (evs []Event) {
		WalkValid(img, testSeq, HeaderSize, Quiescent, valid, func(ev Event) bool { evs = append(evs, ev); return true })
		return evs
	}

	// The file ends exactly after frame 9: ten frames, then the tail.
	img, offs := build()
	valid := offs[10]
	for i := valid; i < int64(len(img)); i++ {
		img[i] = 0xA5
	}
	evs := kinds(img, valid)
	if len(evs) != 11 || evs[10].Kind != EvTail || evs[10].Offset != valid || evs[10].Len != RecordLimit(size)-valid {
		t.Fatalf("cut at a frame boundary: %d events, last %+v", len(evs), evs[len(evs)-1])
	}

	// The file ends inside frame 10: it is torn, to the record limit.
	img, offs = build()
	valid = offs[10] + 50
	for i := valid; i < int64(len(img)); i++ {
		img[i] = 0xA5
	}
	evs = kinds(img, valid)
	last := evs[len(evs)-1]
	if len(evs) != 11 || last.Kind != EvTorn || last.Offset != offs[10] || last.Offset+last.Len != RecordLimit(size) {
		t.Fatalf("cut inside a frame: %d events, last %+v", len(evs), last)
	}

	// The file ends inside frame 10's alignment padding: its checked
	// bytes are all there, so it is intact and the tail follows it.
	img, offs = build()
	end := offs[10] + FrameHeaderSize + 110
	if end == offs[11] {
		t.Fatal("frame 10 has no padding; change its payload length")
	}
	for i := end; i < int64(len(img)); i++ {
		img[i] = 0xA5
	}
	evs = kinds(img, end)
	if len(evs) != 12 || evs[10].Kind != EvFrame || evs[10].Frame.State != Committed ||
		evs[11].Kind != EvTail || evs[11].Offset != offs[11] {
		t.Fatalf("cut inside padding: %d events, frame 10 %+v, last %+v", len(evs), evs[10], evs[len(evs)-1])
	}

	// The file ends inside frame 10's header.
	img, offs = build()
	valid = offs[10] + 8
	for i := valid; i < int64(len(img)); i++ {
		img[i] = 0xA5
	}
	evs = kinds(img, valid)
	if last := evs[len(evs)-1]; len(evs) != 11 || last.Kind != EvTorn || last.Offset != offs[10] {
		t.Fatalf("cut inside a header: %d events, last %+v", len(evs), last)
	}

	// A full image walks as Walk does.
	img, offs = build()
	a, b := kinds(img, int64(len(img))), []Event(nil)
	Walk(img, testSeq, HeaderSize, Quiescent, func(ev Event) bool { b = append(b, ev); return true })
	if len(a) != len(b) || a[len(a)-1].Kind != EvTail || a[len(a)-1].Offset != offs[20] {
		t.Fatalf("WalkValid over the whole image differs from Walk: %d vs %d events", len(a), len(b))
	}
}
