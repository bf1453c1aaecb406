package reader

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestNotPassedWhenAWriterCameBackNoFollow (review): the race
// TestNotPassedWhenAWriterCameBack covers for a follower, for a replay
// without Follow (tail -n +1 --cursor-file F, run from cron). The reader's
// walk of the empty segment a closing writer left found zeros and no
// writer; a writer starts before atTail lists the directory, continues in
// that segment, fills it and commits in the next. atTail passes the
// segment because a later one is listed (stillZero runs only under
// Follow), and the reader returns the next segment's records: every
// record in between is skipped, and a cursor stored after them makes
// every later run skip them too.
func TestNotPassedWhenAWriterCameBackNoFollow(t *testing.T) {
	dir := t.TempDir()
	const size = segment.MinSegmentSize
	now := time.Now().UnixNano()
	img := segment.NewImage(1, size, now)
	off := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, now, []byte("first"))
	segment.PutEnd(img, 1, off, now)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, now); err != nil {
		t.Fatal(err)
	}
	for seq, b := range map[uint64][]byte{1: img, 2: segment.NewImage(2, size, now)} {
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() || string(r.Record().Payload) != "first" || r.Next() {
		t.Fatalf("not one record: %v", r.Err())
	}
	c := r.cur
	if c == nil || c.seq != 2 || c.off != segment.HeaderSize || r.alive || !r.done {
		t.Fatalf("the reader did not end at the start of the empty segment: %+v, alive %v", c, r.alive)
	}

	w, err := writer.Open(dir, writer.Options{SegmentSize: size, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var want []string
	for {
		p := fmt.Sprintf("back %d", len(want))
		pos, err := w.Append([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
		if pos.Seq > c.seq {
			break
		}
	}
	// What the reader saw just before: no writer, zeros from its offset on.
	r.done, r.alive = false, false
	if !r.atTail(c) && r.err != nil {
		t.Fatal(r.err)
	}
	var got []string
	for r.Next() {
		got = append(got, string(r.Record().Payload))
	}
	if len(got) > 0 && got[0] != want[0] {
		t.Fatalf("returned %d records, the first %q: the %d before it, in segment %d, were passed", len(got), got[0], len(want)-len(got), c.seq)
	}
	// Read as a replay reads a live log: every committed record, then no
	// more for now (Next never waits without Follow).
	if len(got) != len(want) || r.Err() != nil {
		t.Fatalf("returned %d of %d records, then %v", len(got), len(want), r.Err())
	}
}
