package reader_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
)

// A Record kept past the point where its segment's mapping is released
// (the reader moved to the next segment, or was closed) cannot be copied
// any more. Clone and AppendPayload say so, naming the segment and the
// record: they reported the file as changed ("truncated?"), which sent
// the caller looking for damage that was not there.
func TestRecordReleased(t *testing.T) {
	dir := t.TempDir()
	recs := writeLog(t, dir, 2000, true)
	if recs[0].pos.Seq == recs[len(recs)-1].pos.Seq {
		t.Fatal("the log must span two segments")
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	first := r.Record()
	for r.Next() && r.Record().Position.Seq == first.Position.Seq {
		// Still in its segment: the first record can be copied.
		if _, err := first.Clone(); err != nil {
			t.Fatalf("Clone within its segment: %v", err)
		}
	}
	moved := r.Record()
	if moved.Position.Seq == first.Position.Seq {
		t.Fatalf("the reader did not reach the second segment: %v", r.Err())
	}
	checkReleased(t, first)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	checkReleased(t, moved)
	// Record no longer hands out the unmapped record: reading its Payload
	// would crash the program (SIGSEGV, which no guard catches).
	if after := r.Record(); after.Payload != nil || after.Position != (reader.Position{}) {
		t.Errorf("Record after Close: %v, %d payload bytes; want the zero Record", after.Position, len(after.Payload))
	}
}

func checkReleased(t *testing.T, rec reader.Record) {
	t.Helper()
	c, err := rec.Clone()
	if !errors.Is(err, reader.ErrReleased) || c.Payload != nil {
		t.Fatalf("Clone of a released record: %q, %v; want ErrReleased", c.Payload, err)
	}
	want := rec.Position.String()
	if !strings.Contains(err.Error(), ".seg") || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the segment file and position %s", err, want)
	}
	dst := []byte("kept")
	got, err := rec.AppendPayload(dst)
	if !errors.Is(err, reader.ErrReleased) || string(got) != "kept" {
		t.Fatalf("AppendPayload of a released record: %q, %v", got, err)
	}
	// A record the caller built, or a clone, is the caller's: never
	// released.
	own := reader.Record{Position: rec.Position, Payload: []byte("x")}
	if _, err := own.Clone(); err != nil {
		t.Fatal(err)
	}
}
