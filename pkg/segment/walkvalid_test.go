package segment

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

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

// FORMAT.md section 3: a shorter file is read as if padded with zeros to
// Size. A DATA frame whose commit word was damaged to a length reaching
// past the file's end is torn either way, but in the zero-padded image the
// walk then resyncs to the intact frames that follow it inside the file.
// WalkValid walks both alike (it once reported the frame torn to the
// record limit, losing the frames after it).
func TestWalkValidResyncsAfterDamagedLength(t *testing.T) {
	const size = 1 << 20
	img, offs := dataRun(size, 20)
	valid := offs[20] // the file ends right after frame 19
	// Damage frame 5's commit word (a bit flip in its high bits): now it
	// claims more than the file holds.
	w := binary.LittleEndian.Uint32(img[offs[5]:])
	binary.LittleEndian.PutUint32(img[offs[5]:], w|1<<16)

	render := func(valid int64) string {
		var parts []string
		WalkValid(img, testSeq, HeaderSize, Quiescent, valid, func(ev Event) bool {
			parts = append(parts, fmt.Sprintf("%s@%d+%d", ev.Kind, ev.Offset, ev.Len))
			return true
		})
		return strings.Join(parts, " ")
	}
	// The same bytes, with the file's missing part present as zeros (they
	// are zeros in img already): what the spec says a short file reads as.
	padded := render(int64(len(img)))
	short := render(valid)
	if padded != short {
		t.Fatalf("truncated file walks differently from its zero-padded image:\n padded: %s\n short:  %s", padded, short)
	}
}

// ZeroFrom "reports the first offset in [from, limit) holding a non-zero
// byte, or limit": for from > limit the range is empty (zeroFrom once
// rounded the negative length down to a word and scanned bytes before from).
func TestZeroFromEmptyRange(t *testing.T) {
	img := make([]byte, 64)
	img[4] = 1
	if p := ZeroFrom(img, 12, 5); p != 5 {
		t.Fatalf("ZeroFrom(img, 12, 5) = %d, want 5 (the range [12,5) is empty)", p)
	}
}
