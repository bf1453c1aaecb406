package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
)

// inspect previewed a data frame's payload straight from the mapping, after
// the walk had checked its CRC there: a file cut in between (an operator, a
// writer's retention) reads as zeros from the cut to the end of its page,
// and the preview showed them as the record's bytes, CRC "ok". The cut is
// made here between the walk and the preview of record 5 (Slots has
// returned; the slot's payload still aliases the mapping), 10 bytes into
// its payload. The preview now comes from a copy checked against the
// frame's CRC, and says the frame changed instead.
func TestInspectPreviewChangedAfterCheck(t *testing.T) {
	dir := t.TempDir()
	path, offs := sealedSegment(t, dir, 10, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i)}, 1000) })
	in, err := verify.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var slots []verify.Slot
	if err := in.Slots(func(s verify.Slot) bool { slots = append(slots, s); return true }); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	if got, want := dataSlot(&slots[4], 32, &buf), strings.Repeat("e", 32); got != `"`+want+`"…` || slots[4].CRC != "ok" {
		t.Fatalf("intact record 4: CRC %s, payload %s; want ok, %q…", slots[4].CRC, got, want)
	}
	s := slots[5]
	if s.Offset != offs[5] || s.Kind != verify.SlotData {
		t.Fatalf("slot 5 is a %s at %d, want data at %d", s.Kind, s.Offset, offs[5])
	}
	if err := os.Truncate(path, offs[5]+segment.FrameHeaderSize+10); err != nil {
		t.Fatal(err)
	}
	got := dataSlot(&s, 32, &buf)
	want := "CHANGED after its check, not shown: " + path + ": changed while it was inspected (truncated?): the record at offset " + strconv.FormatInt(offs[5], 10) + " no longer matches its checksum"
	if got != want || s.CRC != "bad" {
		t.Errorf("record 5 cut after its check: CRC %s, payload %s\nwant CRC bad, %s", s.CRC, got, want)
	}
}
