package reader

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// noteOne takes what the reader's first listing holds as the log's oldest
// segments, to tell a segment 1 put back from a backup (created before
// them) from a new log's. Retention removing the oldest listed segment
// between that listing and noteOne's read of its header made the
// reference unknown for good (any segment 1 counted as a new log's, and a
// backup put back stopped a follower, found by a review); it looks again
// at the next listing instead.
func TestNoteOneLooksAgainWhenTheOldestWentMeanwhile(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	for pos := (segment.Position{}); pos.Seq < 4; {
		if pos, err = w.Append(bytes.Repeat([]byte("r"), 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	created := func(seq uint64) int64 {
		h, err := segment.ReadHeader(filepath.Join(dir, segment.FileName(seq)))
		if err != nil {
			t.Fatal(err)
		}
		return h.Created
	}
	one, three := created(1), created(3)
	if err := os.Remove(filepath.Join(dir, segment.FileName(1))); err != nil { // retention
		t.Fatal(err)
	}
	r, err := Open(dir, Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.list) == 0 || r.list[0].Seq != 2 {
		t.Fatalf("listing %v, want it to begin at segment 2", r.list)
	}
	// Retention goes on after the listing, before the first look.
	if err := os.Remove(filepath.Join(dir, segment.FileName(2))); err != nil {
		t.Fatal(err)
	}
	r.one = oneUnlooked
	r.noteOne()
	if r.one != oneUnlooked {
		t.Fatalf("decided (%d, created %d) on a listed segment removed since", r.one, r.oneCreated)
	}
	if err := r.relist(); err != nil {
		t.Fatal(err)
	}
	r.noteOne()
	if r.one != oneAbsent || r.oneCreated != three {
		t.Fatalf("after the next listing: %d, created %d; want segment 1 absent, the oldest created %d", r.one, r.oneCreated, three)
	}
	if r.oneMadeAgain(one) {
		t.Fatal("the log's own segment 1, put back, is taken for a new log's")
	}
}
