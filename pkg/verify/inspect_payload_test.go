package verify

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Slot.AppendPayload hands out a data slot's payload only as the bytes
// the walk checked: a copy of an intact slot is its payload; a slot whose
// page the file was cut inside since reads as zeros past the cut, and is
// a ChangedError at the frame's offset (ErrChangedAfterCheck); one whose
// page is gone is a ChangedError at an offset with no data. Slots
// other than data append nothing.
func TestSlotAppendPayload(t *testing.T) {
	var recs [][]byte
	for i := range 12 {
		recs = append(recs, bytes.Repeat([]byte{'a' + byte(i)}, 1000))
	}
	sg := newTestLog(t).seal(build(1, recs, true))
	path, offs := sg.path, sg.offs
	in, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var slots []Slot
	if err := in.Slots(func(s Slot) bool { slots = append(slots, s); return true }); err != nil {
		t.Fatal(err)
	}
	if p, err := slots[1].AppendPayload([]byte("x")); err != nil || !bytes.Equal(p, append([]byte("x"), bytes.Repeat([]byte{'b'}, 1000)...)) {
		t.Fatalf("intact slot 1: %q, %v", p, err)
	}
	if end := slots[len(slots)-1]; end.Kind != SlotEnd {
		t.Fatalf("last slot %s, want end", end.Kind)
	} else if p, err := end.AppendPayload(nil); p != nil || err != nil {
		t.Fatalf("end slot: %q, %v; want nothing", p, err)
	}

	// Record 9 starts in the page after 4096*2; record 5 in the page of
	// 4096 to 8192, whose part after the cut reads as zeros.
	cut := offs[5] + segment.FrameHeaderSize + 10
	if cut/4096 != 1 || offs[9] < 2*4096 {
		t.Fatalf("layout: record 5 at %d, record 9 at %d", offs[5], offs[9])
	}
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	var ce *segment.ChangedError
	p, err := slots[5].AppendPayload([]byte("x"))
	if string(p) != "x" || !errors.As(err, &ce) || !errors.Is(err, segment.ErrChangedAfterCheck) || ce.Path != path || ce.Off != offs[5] {
		t.Errorf("slot 5 cut inside its page: %q, %v; want nothing and a ChangedError at %d", p, err, offs[5])
	}
	var mf *segment.MappingFault
	p, err = slots[9].AppendPayload(nil)
	// The fault is in its payload, past 8192; the data stops at the cut.
	if p != nil || !errors.As(err, &ce) || !errors.As(err, &mf) || ce.Path != path || ce.Off != cut {
		t.Errorf("slot 9 with its page gone: %q, %v; want nothing and a ChangedError at the file's new end, %d", p, err, cut)
	}
}
